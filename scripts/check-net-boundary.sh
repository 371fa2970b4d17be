#!/bin/sh
# Issue 14's boundary, kept enforced: above core/net no C source names a protobuf-c type, includes
# the generated fedc.pb-c.h or the wire codec (codec.h), or calls libzmq. The programs build and
# read the typed messages of fedc/msg.h and send them with fedc/transport.h.
#
#   scripts/check-net-boundary.sh DIR...   (the tests run it on client coordinator cli core/prog)
#
# Exits 1 listing every offending line, 0 when there is none, 2 on a usage error.
set -u
if [ "$#" -eq 0 ]; then
    echo "usage: $0 DIR..." >&2
    exit 2
fi
for dir in "$@"; do
    if [ ! -d "$dir" ]; then
        echo "check-net-boundary: $dir is not a directory" >&2
        exit 2
    fi
done
pattern='Fedc__|FEDC__|fedc\.pb-c|protobuf|fedc/codec\.h|zmq\.h|zmq_[a-z_]+\('
if found=$(grep -rnE --include='*.c' --include='*.h' "$pattern" "$@"); then
    printf '%s\n' "$found" >&2
    echo "check-net-boundary: FAIL: code above core/net uses protobuf-c, codec.h or libzmq" \
         "(build and read the structs of fedc/msg.h instead)" >&2
    exit 1
fi
echo "check-net-boundary: ok ($*)"
