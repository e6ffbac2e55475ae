# bash completion for courier-trace: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_trace() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--ca-cert --certificate --chassis --db --detailed --format --minimal --pin-root --private-key --run-dir --summary --timeout" -- "$cur"))
}
complete -o default -F _courier_trace courier-trace
