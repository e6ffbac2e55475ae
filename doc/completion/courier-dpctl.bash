# bash completion for courier-dpctl: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_dpctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--burst --chassis --count --for --format --pin-root --rate --run-dir cache cache-flush counters ct eips hubs locals monitor ports routes sg vpcs vxnets" -- "$cur"))
}
complete -o default -F _courier_dpctl courier-dpctl
