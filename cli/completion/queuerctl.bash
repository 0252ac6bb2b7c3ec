# bash completion for queuerctl (installed as share/bash-completion/completions/queuerctl).
# Completes verbs, nouns, flags and the values of --status, --config and --file. The tables
# below follow `queuerctl --help` and each subcommand's --help; the docs tests (ctest -R docs)
# fail, naming what is missing, when a verb, noun or flag is added to queuerctl and not here.

_queuerctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    local globals="--json --config -v --verbose -h --help"
    local verbs="migrate version add get list wait cancel stop retry web"
    local -A nouns=(
        [add]="job jobs"
        [get]="job jobArchive worker"
        [list]="job jobArchive worker connection"
        [wait]="job"
        [cancel]="job worker"
        [stop]="worker"
        [retry]="job"
    )
    local list_flags="--status --search -i --lastId -l --limit"
    local -A flags=(
        [migrate]=""
        [version]=""
        ["add job"]="--task --params --keyed --options"
        ["add jobs"]="-f --file"
        ["get job"]="-r --rid"
        ["get jobArchive"]="-r --rid"
        ["get worker"]="-r --rid"
        ["list job"]=$list_flags
        ["list jobArchive"]=$list_flags
        ["list worker"]=$list_flags
        ["list connection"]=$list_flags
        ["wait job"]="-r --rid --timeout"
        ["cancel job"]="-r --rid"
        ["cancel worker"]="-r --rid"
        ["stop worker"]="-r --rid -g --graceful"
        ["retry job"]="-r --rid"
        [web]="--listen --read-only"
    )
    # Flags followed by a value.
    local with_value=" --config --task --params --keyed --options -f --file -r --rid --status
        --search -i --lastId -l --limit --timeout --listen "
    local statuses="QUEUED SCHEDULED RUNNING SUCCEEDED FAILED CANCELLED READY STOPPING STOPPED"

    case $prev in
        --config | -f | --file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --status)
            COMPREPLY=($(compgen -W "$statuses" -- "$cur"))
            return
            ;;
    esac
    if [[ $with_value == *" $prev "* ]]; then
        COMPREPLY=()
        return
    fi

    # The verb and noun typed so far, skipping flags and their values.
    local verb="" noun="" i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == -* ]]; then
            [[ $with_value == *" $w "* ]] && ((i++))
            continue
        fi
        if [[ -z $verb ]]; then
            verb=$w
        elif [[ -z $noun ]]; then
            noun=$w
        fi
    done

    local words
    if [[ -z $verb ]]; then
        words="$verbs $globals"
    elif [[ -n ${nouns[$verb]+set} && -z $noun ]]; then
        words="${nouns[$verb]}"
        [[ $cur == -* ]] && words="$globals"
    else
        local key=$verb
        [[ -n $noun ]] && key="$verb $noun"
        words="${flags[$key]} $globals"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _queuerctl queuerctl
