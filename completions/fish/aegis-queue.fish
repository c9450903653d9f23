# fish completion for aegis-queue(1)

complete -c aegis-queue -f
complete -c aegis-queue -n __fish_use_subcommand -a 'ls show retry drop purge stats cursors cursor-rm' -d 'Command'
complete -c aegis-queue -l state -x -a 'waiting in_flight dead all' -d 'ls: which messages'
complete -c aegis-queue -l limit -x -d 'ls: at most N'
complete -c aegis-queue -l dead -d 'Retry or purge every dead message'
complete -c aegis-queue -l all -d 'Purge every message'
complete -c aegis-queue -l ttl -x -d 'Retry: a fresh TTL for expired messages'
complete -c aegis-queue -s y -l yes -d 'Purge without asking'
complete -c aegis-queue -l json -d 'Print the answer as JSON'
complete -c aegis-queue -l timeout -x -d 'Give up after DURATION'
complete -c aegis-queue -l socket -r -F -d 'Broker socket'
complete -c aegis-queue -s h -l help -d 'Print help and exit'
complete -c aegis-queue -s V -l version -d 'Print the version and exit'
