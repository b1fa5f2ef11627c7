#!/bin/sh
# Policy routing for nftables-tproxy.nft / iptables-tproxy.rules: packets marked 1 are delivered
# locally, so that TPROXY can hand them to smtpscope's transparent socket.
#
#   tproxy-routing.sh up     add the rules and routes (idempotent)
#   tproxy-routing.sh down   remove them
set -eu

mark=${SMTPSCOPE_TPROXY_MARK:-1}
table=${SMTPSCOPE_TPROXY_TABLE:-100}

case "${1:-}" in
up)
    for family in -4 -6; do
        ip "$family" rule show | grep -q "fwmark $(printf '0x%x' "$mark") lookup $table" ||
            ip "$family" rule add fwmark "$mark" lookup "$table"
    done
    ip -4 route replace local 0.0.0.0/0 dev lo table "$table"
    ip -6 route replace local ::/0 dev lo table "$table"
    ;;
down)
    ip -4 rule del fwmark "$mark" lookup "$table" 2>/dev/null || true
    ip -6 rule del fwmark "$mark" lookup "$table" 2>/dev/null || true
    ip -4 route flush table "$table" 2>/dev/null || true
    ip -6 route flush table "$table" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
