# fish completion for aegis-sub(1)

complete -c aegis-sub -f -a 'agent. backend. backend.all.' -d 'Channel pattern'
complete -c aegis-sub -s C -l count -x -d 'Exit after N messages'
complete -c aegis-sub -s W -l wait -x -d 'Stop after SECS'
complete -c aegis-sub -s v -l verbose -d 'Prefix each payload with its channel'
complete -c aegis-sub -l json -d 'One JSON object per message'
complete -c aegis-sub -l socket -r -F -d 'Broker socket'
complete -c aegis-sub -s h -l help -d 'Print help and exit'
complete -c aegis-sub -s V -l version -d 'Print the version and exit'
