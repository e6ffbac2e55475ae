# bash completion for courier-northd: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_northd() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--ca-cert --certificate --log-file --log-format --log-level --max-txn-ops --metrics-addr --nb --private-key --probe-interval --run-dir --sb" -- "$cur"))
}
complete -o default -F _courier_northd courier-northd
