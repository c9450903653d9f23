# fish completion for aegis-keygen(1)

# aegis-keygen takes no operands, only options.
complete -c aegis-keygen -f
complete -c aegis-keygen -s f -l file -r -F -d 'Secret key file; the public key goes in FILE.pub'
complete -c aegis-keygen -s C -l comment -x -d 'Comment for a new key'
complete -c aegis-keygen -l force -d 'Replace an existing key file and its .pub'
complete -c aegis-keygen -s q -l quiet -d 'Print nothing when a key is made'
complete -c aegis-keygen -s y -l print-public -d 'Print the public key line of a secret key file'
complete -c aegis-keygen -s l -l fingerprint -d 'Print the fingerprint of a secret or public key file'
complete -c aegis-keygen -l json -d 'With -l: print one JSON object'
complete -c aegis-keygen -s h -l help -d 'Print help and exit'
complete -c aegis-keygen -s V -l version -d 'Print the version and exit'
