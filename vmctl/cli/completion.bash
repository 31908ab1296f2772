# bash completion for vmctl. Source it, or install it as
# /usr/share/bash-completion/completions/vmctl.
_vmctl() {
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="start stop restart status delete logs exec shell audit docker-env context isolation ports settings shares version"
    local global="--json --connect -c --vm --verbose -v --help -h"
    local keys="vm_name cpus memory_mib disk_gib accelerator connect_uri image_dir isolation shared_folders share_owner registry_mirrors insecure_registries dns extra_ca_certs"

    case "$prev" in
        --connect|-c) COMPREPLY=($(compgen -W "qemu:///system qemu:///session" -- "$cur")); return ;;
        --image-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --accelerator) COMPREPLY=($(compgen -W "auto kvm tcg" -- "$cur")); return ;;
        --vm|--timeout|--tail|-n|--name|--limit) return ;;
    esac

    # The command is the first word that is not an option or an option's value.
    local cmd="" sub="" i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case "$w" in
            --connect|-c|--vm) ((i++)); continue ;;
            -*) continue ;;
        esac
        if [ -z "$cmd" ]; then cmd=$w; elif [ -z "$sub" ]; then sub=$w; fi
    done

    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$commands $global" -- "$cur"))
        return
    fi
    case "$cmd" in
        start) COMPREPLY=($(compgen -W "--image-dir --accelerator --timeout --help" -- "$cur")) ;;
        stop|restart) COMPREPLY=($(compgen -W "--timeout --help" -- "$cur")) ;;
        delete) COMPREPLY=($(compgen -W "--yes -y --keep-data --help" -- "$cur")) ;;
        logs)
            if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "console hostagent engine dockerd containerd agent --tail --help" -- "$cur"));
            else COMPREPLY=($(compgen -W "--tail -n" -- "$cur")); fi ;;
        isolation)
            if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "on off status --help" -- "$cur"));
            else COMPREPLY=($(compgen -W "--yes --exclusive-ranges --shared-range" -- "$cur")); fi ;;
        context) COMPREPLY=($(compgen -W "--use --name --help" -- "$cur")) ;;
        shares)
            if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "list add remove --help" -- "$cur"));
            elif [ "$sub" = add ]; then COMPREPLY=($(compgen -d -W "--read-only" -- "$cur"));
            else COMPREPLY=($(compgen -d -- "$cur")); fi ;;
        exec) COMPREPLY=($(compgen -W "--timeout -- --help" -- "$cur")) ;;
        shell) COMPREPLY=($(compgen -W "--tty -t --no-tty -T -- --help" -- "$cur")) ;;
        audit) COMPREPLY=($(compgen -W "--limit -n --denied --help" -- "$cur")) ;;
        settings)
            if [ -z "$sub" ]; then
                COMPREPLY=($(compgen -W "get set unset --help" -- "$cur"))
            elif [ "$COMP_CWORD" -le "$(_vmctl_index_of "$sub")" ] || [ "$prev" = "$sub" ]; then
                COMPREPLY=($(compgen -W "$keys" -- "$cur"))
            elif [ "$sub" = set ]; then
                case "$prev" in
                    accelerator) COMPREPLY=($(compgen -W "auto kvm tcg" -- "$cur")) ;;
                    isolation) COMPREPLY=($(compgen -W "on off" -- "$cur")) ;;
                    image_dir|shared_folders) COMPREPLY=($(compgen -d -- "$cur")) ;;
                    extra_ca_certs) COMPREPLY=($(compgen -f -- "$cur")) ;;
                esac
            fi ;;
        *) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    esac
}
_vmctl_index_of() {
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
        [ "${COMP_WORDS[i]}" = "$1" ] && { echo "$i"; return; }
    done
    echo 0
}
complete -F _vmctl vmctl
