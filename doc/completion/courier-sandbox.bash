# bash completion for courier-sandbox: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_sandbox() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--dhcp --dhcp-client --format --gateways --hosts --hubs --listen --mtu --netns --qemu --run-dir --tls --to --verbose demo exec host-down host-up relay show start status stop underlay-replace vm-add vm-del vm-migrate vm-move" -- "$cur"))
}
complete -o default -F _courier_sandbox courier-sandbox
