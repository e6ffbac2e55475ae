# bash completion for courier-nbctl: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_nbctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--all --bare --block --ca-cert --certificate --chassis --columns --db --format --gateway --id --if-exists --ips --kind --learned-limit --mac --may-exist --migrating-to --next-hop --no-headings --no-leader-only --no-port-security --open --port --port-security --private-key --remote --remote-group --run-dir --runtime --sb --sg --timeout --vip --vips --vni --wait add claim-sync clear create del-connection del-ssl destroy eip-add eip-bind eip-del eip-list eip-unbind extnet-add extnet-del extnet-list find get get-connection get-hub-chassis get-ssl init list port-add port-del port-list port-set remove route-add route-del route-list set set-connection set-hub-chassis set-ssl sg-add sg-del sg-list sg-rule-add sg-rule-del sg-rule-list show snat-del snat-list snat-set sync vpc-add vpc-del vpc-list vxnet-add vxnet-del vxnet-list wait-until" -- "$cur"))
}
complete -o default -F _courier_nbctl courier-nbctl
