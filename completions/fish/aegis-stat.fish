# fish completion for aegis-stat(1)

complete -c aegis-stat -f
complete -c aegis-stat -l json -d 'Print the status as JSON'
complete -c aegis-stat -l prometheus -d 'Print Prometheus metrics'
complete -c aegis-stat -l watch -x -d 'Redraw every SECS'
complete -c aegis-stat -l fleet -x -d 'Show a gateway fleet from its admin endpoint (http://HOST:PORT)'
complete -c aegis-stat -l check -d 'One Nagios-style line and exit code'
complete -c aegis-stat -l warn-queue -x -d 'WARNING above N queued'
complete -c aegis-stat -l crit-queue -x -d 'CRITICAL above N queued'
complete -c aegis-stat -l warn-dead -x -d 'WARNING above N dead letters'
complete -c aegis-stat -l crit-dead -x -d 'CRITICAL above N dead letters'
complete -c aegis-stat -l warn-age -x -d 'WARNING when the oldest waits over SECS'
complete -c aegis-stat -l crit-age -x -d 'CRITICAL when the oldest waits over SECS'
complete -c aegis-stat -l crit-disconnected -x -d 'CRITICAL when disconnected over SECS'
complete -c aegis-stat -l timeout -x -d 'Give up after DURATION'
complete -c aegis-stat -l socket -r -F -d 'Broker socket'
complete -c aegis-stat -s h -l help -d 'Print help and exit'
complete -c aegis-stat -s V -l version -d 'Print the version and exit'
