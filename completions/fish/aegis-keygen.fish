# fish completion for aegis-keygen(1)

# Operands are the public key files -s certifies.
complete -c aegis-keygen -s f -l file -r -F -d 'Secret key file; the public key goes in FILE.pub'
complete -c aegis-keygen -s C -l comment -x -d 'Comment for a new key or certificate'
complete -c aegis-keygen -l force -d 'Replace an existing key file and its .pub, or a certificate'
complete -c aegis-keygen -s q -l quiet -d 'Print nothing when a key or certificate is made'
complete -c aegis-keygen -s y -l print-public -d 'Print the public key line of a secret key file'
complete -c aegis-keygen -s l -l fingerprint -d 'Print the fingerprint of a secret or public key file'
complete -c aegis-keygen -l json -d 'Print one JSON object (for -l, -L)'
complete -c aegis-keygen -s s -l sign -r -F -d 'Certify KEY.pub files with this CA secret key'
complete -c aegis-keygen -s I -l id -x -d 'With -s: the identity id granted'
complete -c aegis-keygen -s r -l role -x -a 'agent backend gateway' -d 'With -s: the role granted'
complete -c aegis-keygen -s n -l narrow -x -d 'With -s: pub=PATTERN[,sub=PATTERN]'
complete -c aegis-keygen -s V -l validity -x -d 'With -s: [FROM:]TO, e.g. +52w'
complete -c aegis-keygen -s z -l serial -x -d 'With -s: the serial number'
complete -c aegis-keygen -s L -l show-certificate -d 'Show the certificate file given with -f'
complete -c aegis-keygen -s h -l help -d 'Print help and exit'
complete -c aegis-keygen -l version -d 'Print the version and exit'
