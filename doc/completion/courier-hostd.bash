# bash completion for courier-hostd: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_hostd() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--announce-budget --announce-burst --ca-cert --cache-idle --certificate --chassis --device --encap-ip --gateway-networks --gateway-next-hop --heartbeat --hub-budget --hub-burst --hub-down-after --hub-probe-interval --icmp-budget --icmp-burst --kernel-encap --log-file --log-format --log-level --metrics-addr --pin-root --private-key --refresh --role --run-dir --sb --snat-port-quota --unknown-ttl --uplink attach" -- "$cur"))
}
complete -o default -F _courier_hostd courier-hostd
