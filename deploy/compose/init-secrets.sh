#!/usr/bin/env bash
# Writes the secret files docker-compose.yml mounts, into $SECRETS_DIR (default ./secrets).
# An existing file is never overwritten, so running it again is safe.
#   slack-webhook-url       from $SLACK_WEBHOOK_URL, or write the URL to the file yourself
#   statuspage-hook-token   generated: Alertmanager's token for the status page's incident hook
#   admin-tokens            generated: one admin API token per line (add more lines for people)
#   postgres-password       generated
#   grafana-admin-password  generated
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${SECRETS_DIR:-./secrets}

# The directory keeps other users of the host out; the files stay readable (0644) because each
# container reads its secret as its own unprivileged user.
umask 022
mkdir -p "$dir"
chmod 700 "$dir"

random_secret() {
    head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32
}

write_secret() {
    local name=$1 value=$2
    if [[ -s $dir/$name ]]; then
        echo "kept      $dir/$name"
        return
    fi
    printf '%s\n' "$value" >"$dir/$name"
    chmod 644 "$dir/$name"
    echo "wrote     $dir/$name"
}

if [[ ! -s $dir/slack-webhook-url ]]; then
    if [[ -z ${SLACK_WEBHOOK_URL:-} ]]; then
        echo "error: no Slack webhook: set SLACK_WEBHOOK_URL, or put the URL in $dir/slack-webhook-url" >&2
        exit 1
    fi
    if [[ $SLACK_WEBHOOK_URL != https://* ]]; then
        echo "error: SLACK_WEBHOOK_URL must be an https:// URL" >&2
        exit 1
    fi
fi
write_secret slack-webhook-url "${SLACK_WEBHOOK_URL:-}"
write_secret statuspage-hook-token "$(random_secret)"
write_secret admin-tokens "$(random_secret)"
write_secret postgres-password "$(random_secret)"
write_secret grafana-admin-password "$(random_secret)"
echo "admin API token: first line of $dir/admin-tokens; Grafana: admin / $dir/grafana-admin-password"
