# bash completion for queuerctl (installed as share/bash-completion/completions/queuerctl).
# Completes verbs, nouns, flags and the values of --status (comma-separated lists for the bulk
# verbs), --config and --file. The tables below follow `queuerctl --help` and each subcommand's
# --help; the docs tests (ctest -R docs) fail, naming what is missing or extra, when a verb, noun
# or flag of queuerctl and these tables differ.

_queuerctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    # Accepted anywhere on the line; -V/--version only before the verb.
    local globals="--json --config -v --verbose -h --help"
    local top_only="-V --version"
    local verbs="migrate version add get list wait cancel stop retry delete status stats web"
    local -A nouns=(
        [add]="job jobs"
        [get]="job jobArchive worker"
        [list]="job jobArchive worker connection"
        [wait]="job"
        [cancel]="job jobs worker"
        [stop]="worker"
        [retry]="job jobs"
        [delete]="job jobs"
    )
    local page="--status --search -i --lastId -l --limit"
    local bulk="--task --status --since --until --dry-run"
    local -A flags=(
        [migrate]="--compat"
        [version]=""
        [status]=""
        [stats]="--since"
        ["add job"]="--task --params --keyed --options --strict"
        ["add jobs"]="-f --file --strict"
        ["get job"]="-r --rid"
        ["get jobArchive"]="-r --rid"
        ["get worker"]="-r --rid"
        ["list job"]="$page --since --until"
        ["list jobArchive"]="$page --since --until --error"
        ["list worker"]=$page
        ["list connection"]=$page
        ["wait job"]="-r --rid --timeout"
        ["cancel job"]="-r --rid"
        ["cancel jobs"]=$bulk
        ["cancel worker"]="-r --rid"
        ["stop worker"]="-r --rid -g --graceful"
        ["retry job"]="-r --rid"
        ["retry jobs"]="$bulk --error"
        ["delete job"]="-r --rid"
        ["delete jobs"]="$bulk --error --all"
        [web]="--listen --read-only"
    )
    # Flags followed by a value.
    local with_value=" --config --task --params --keyed --options -f --file -r --rid --status
        --search -i --lastId -l --limit --timeout --since --until --error --compat --listen "
    local live="QUEUED SCHEDULED RUNNING" ended="SUCCEEDED FAILED CANCELLED"

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

    case $prev in
        --config | -f | --file)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return
            ;;
        --status)
            # The statuses the command accepts; the bulk verbs take a comma-separated list.
            local values="" head=""
            case "$verb $noun" in
                "list job" | "cancel jobs") values=$live ;;
                "list jobArchive" | "retry jobs" | "delete jobs") values=$ended ;;
                "list worker") values="READY RUNNING STOPPING STOPPED FAILED" ;;
                "list connection") values="active idle" ;;
            esac
            if [[ $noun == jobs && $cur == *,* ]]; then
                head=${cur%,*},
                cur=${cur##*,}
                local v rest=""
                for v in $values; do
                    [[ ,$head == *,$v,* ]] || rest+=" $v"
                done
                values=$rest
            fi
            mapfile -t COMPREPLY < <(compgen -P "$head" -W "$values" -- "$cur")
            return
            ;;
        --compat)
            mapfile -t COMPREPLY < <(compgen -W "python go" -- "$cur")
            return
            ;;
    esac
    if [[ $with_value == *" $prev "* ]]; then
        COMPREPLY=()
        return
    fi

    local words
    if [[ -z $verb ]]; then
        words="$verbs $globals $top_only"
    elif [[ -n ${nouns[$verb]+set} && -z $noun ]]; then
        words="${nouns[$verb]}"
        [[ $cur == -* ]] && words="$globals"
    else
        local key=$verb
        [[ -n $noun ]] && key="$verb $noun"
        words="${flags[$key]} $globals"
    fi
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}
complete -F _queuerctl queuerctl
