# bash completion for courier-southd: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_southd() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--age-batch --ca-cert --certificate --dead-after --handoff-dead-for --handoff-max-age --hubs-per-vpc --learned-age --log-file --log-format --log-level --metrics-addr --nb --private-key --probe-interval --run-dir --sb" -- "$cur"))
}
complete -o default -F _courier_southd courier-southd
