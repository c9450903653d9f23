# fish completion for aegis-gateway(1)

# aegis-gateway takes no operands, only options.
complete -c aegis-gateway -f
complete -c aegis-gateway -l listen -x -d 'Address for brokers, HOST:PORT (port 0 picks one)'
complete -c aegis-gateway -l identity -r -F -d 'The gateway secret key file'
complete -c aegis-gateway -l authorized -r -F -d 'Authorized-keys file, re-read on SIGHUP'
complete -c aegis-gateway -l revoked -r -F -d 'Keys and certificate serials to refuse, re-read on SIGHUP'
complete -c aegis-gateway -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory, created 0700'
complete -c aegis-gateway -l admin -x -d 'Serve /metrics and /healthz on HOST:PORT'
complete -c aegis-gateway -l channel-controls -r -F -d 'Disabled channel patterns, re-read on SIGHUP'
complete -c aegis-gateway -l tls-cert -r -F -d 'PEM certificate chain: serve wss://'
complete -c aegis-gateway -l tls-key -r -F -d 'PEM private key for --tls-cert'
complete -c aegis-gateway -l max-sessions -x -d 'Authenticated sessions at most'
complete -c aegis-gateway -l max-message-bytes -x -d 'Largest published batch in bytes'
complete -c aegis-gateway -l handshake-timeout -x -d 'Seconds a client has to finish the handshake'
complete -c aegis-gateway -l clock-skew -x -d 'Accepted clock difference in seconds'
complete -c aegis-gateway -l inbox-max-messages -x -d 'Messages stored per identity at most'
complete -c aegis-gateway -l inbox-max-age -x -d 'Seconds before stored messages and tokens expire'
complete -c aegis-gateway -l replay-window -x -d 'Deliveries in flight per session'
complete -c aegis-gateway -l replay-rate -x -d 'Deliveries per second per session (0: no limit)'
complete -c aegis-gateway -s h -l help -d 'Print help and exit'
complete -c aegis-gateway -s V -l version -d 'Print the version and exit'
