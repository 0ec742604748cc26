# bash completion for ssx(1)
_ssx() {
  local cur prev words cword
  _init_completion || return

  local cmd="" sub="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -*) ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=${words[i]}
        elif [[ -z $sub && ($cmd == policy || $cmd == pki) ]]; then
          sub=${words[i]}
        fi
        ;;
    esac
  done

  case $prev in
    --policy | --config) _filedir toml; return ;;
    --proxy-protocol) COMPREPLY=($(compgen -W 'v2' -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W 'server client' -- "$cur")); return ;;
    --log-format) COMPREPLY=($(compgen -W 'text json' -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W 'debug info warning error' -- "$cur")); return ;;
    --key) COMPREPLY=($(compgen -W 'ec-p256 ed25519 rsa2048' -- "$cur")); return ;;
    --program) _filedir; return ;;
    --exec) COMPREPLY=($(compgen -c -- "$cur")); return ;;
    --listen | --to | --metrics | --connect | --accept | --name | --dns | --ip | --uri | \
      --days | --workers | --max-handshakes | --max-handshakes-per-source | --grace | \
      --setup-timeout | --idle-timeout | --keepalive | --resolve-interval | --socket | \
      --max-connections | --metrics)
      return ;;
  esac

  local opts
  case $cmd in
    "") opts="demo connect listen tunnel policy pki agent --help --version" ;;
    agent)
      case $sub in
        "") opts="status --policy --socket --max-connections --metrics --help" ;;
        status) opts="--socket --policy --help" ;;
      esac
      ;;
    demo) opts="--help" ;;
    connect) opts="--policy --name --encrypt --allow-insecure --json --udp --help" ;;
    listen) opts="--policy --name --encrypt --allow-insecure --json --udp --once --exec --idle-timeout --keepalive --impersonate --help" ;;
    tunnel) opts="--config --policy --mode --listen --to --name --metrics --workers --max-handshakes --max-handshakes-per-source --idle-timeout --keepalive --grace --setup-timeout --reuseport --log-format --log-level --proxy-protocol --resolve-interval --help" ;;
    policy)
      case $sub in
        "") opts="check explain --help" ;;
        check) opts="--help"; [[ $cur != -* ]] && { _filedir toml; return; } ;;
        explain) opts="--policy --connect --accept --program --udp --json --help" ;;
      esac
      ;;
    pki)
      case $sub in
        "") opts="init issue --help" ;;
        init) opts="--name --key --days --force --help"; [[ $cur != -* ]] && { _filedir -d; return; } ;;
        issue) opts="--dns --ip --uri --days --key --client --server --force --public-key --help"; [[ $cur != -* ]] && { _filedir -d; return; } ;;
      esac
      ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _ssx ssx
