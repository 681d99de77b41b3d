#!/bin/sh
# Certificates for the TLS unit tests (test_stream_tls.c), made in DIR at
# test time: a CA, a server certificate for localhost and 127.0.0.1 signed
# by it, a client certificate signed by it, and an unrelated CA.
set -e
cd "$1"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=sockit-unit-ca 2>/dev/null
key other.key
openssl req -x509 -new -key other.key -out other.pem -days 2 -subj /CN=sockit-other-ca 2>/dev/null
sign() { # name CN ext
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
        -days 2 -extfile "$1.ext" 2>/dev/null
}
sign srv localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1'
sign cli sockit-client 'extendedKeyUsage=clientAuth'
printf 'not a certificate\n' > bad.pem
