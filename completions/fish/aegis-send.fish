# fish completion for aegis-send(1)

complete -c aegis-send -f -a 'agent. backend.' -d 'Channel'
complete -c aegis-send -s m -l message -x -d 'The payload text'
complete -c aegis-send -s f -l file -r -F -d 'Read the payload from FILE'
complete -c aegis-send -s p -l priority -x -a 'critical high normal low' -d 'Message priority'
complete -c aegis-send -l wait-ack -d 'Return once the gateway has stored the message'
complete -c aegis-send -l timeout -x -d 'Give up after SECS'
complete -c aegis-send -l socket -r -F -d 'Broker socket'
complete -c aegis-send -s h -l help -d 'Print help and exit'
complete -c aegis-send -s V -l version -d 'Print the version and exit'
