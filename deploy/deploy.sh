#!/usr/bin/env bash
# Deploys llm-scheduler to Google Cloud: Firestore rules and indexes, the on_task_run trigger
# function and the run_task_http function. See deploy/README.md for what each setting is for.
#
# Usage:
#   PROJECT=my-project REGION=us-central1 deploy/deploy.sh
#   DRY_RUN=1 PROJECT=my-project deploy/deploy.sh     # print the commands, run nothing
#
# Settings (environment variables):
#   PROJECT           Google Cloud project (default: gcloud's configured project)
#   REGION            where the functions run (default: us-central1)
#   TRIGGER_LOCATION  the Firestore database's location, where the trigger lives
#                     (default: looked up with gcloud, e.g. nam5 or us-central1)
#   MEMORY            memory of each function (default: 512Mi)
#   SERVICE_ACCOUNT   the functions' runtime service account (default: the compute default)
#   SECRETS           --set-secrets value mapping provider key variables to Secret Manager
#                     secrets (default: OPENAI_API_KEY=openai-api-key:latest,...)
#   SKIP_FIRESTORE=1  do not deploy rules and indexes (they need the firebase CLI)
#
# Needs: gcloud (authenticated, APIs enabled: cloudfunctions, run, eventarc, cloudbuild,
# artifactregistry, firestore, secretmanager), python3 with pip, and the firebase CLI for the
# rules and indexes.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$DEPLOY_DIR")"

# The trigger's event type, database and path pattern: one place, also checked by the tests.
# shellcheck source=trigger.env
source "$DEPLOY_DIR/trigger.env"

DRY_RUN="${DRY_RUN:-}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}"
REGION="${REGION:-us-central1}"
MEMORY="${MEMORY:-512Mi}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-}"
SECRETS="${SECRETS:-OPENAI_API_KEY=openai-api-key:latest,GEMINI_API_KEY=gemini-api-key:latest,ANTHROPIC_API_KEY=anthropic-api-key:latest}"
RUNTIME="python312"
# Cloud Functions' maximum for event-driven functions; the code hands a task off a minute
# before it (LLM_SCHEDULER_TIMEOUT_SECONDS must say the same).
EVENT_TIMEOUT_SECONDS=540
HTTP_TIMEOUT_SECONDS=3600

if [[ -z "$PROJECT" ]]; then
  echo "error: set PROJECT (or gcloud config set project ...)" >&2
  exit 2
fi

run() {
  if [[ -n "$DRY_RUN" ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

if [[ -z "${TRIGGER_LOCATION:-}" ]]; then
  if [[ -n "$DRY_RUN" ]]; then
    TRIGGER_LOCATION="DATABASE_LOCATION"
  else
    TRIGGER_LOCATION="$(gcloud firestore databases describe --project="$PROJECT" \
      --database="$TRIGGER_DATABASE" --format='value(locationId)')"
  fi
fi

# 1. Stage the function source: main.py, requirements.txt and the package as a wheel. Cloud
#    Build installs requirements.txt with pip; the wheel line is appended here because its file
#    name carries the version.
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/llm-scheduler-functions.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/wheels"
cp "$REPO_ROOT/functions/main.py" "$REPO_ROOT/functions/requirements.txt" "$STAGE/"
run python3 -m pip wheel --quiet --no-deps --wheel-dir "$STAGE/wheels" "$REPO_ROOT"
if [[ -n "$DRY_RUN" ]]; then
  WHEEL="llm_scheduler-VERSION-py3-none-any.whl"
else
  WHEEL="$(cd "$STAGE/wheels" && ls llm_scheduler-*.whl)"
fi
printf './wheels/%s[firestore,cloud,all]\n' "$WHEEL" >>"$STAGE/requirements.txt"

STORE_URL="firestore://$PROJECT/$TRIGGER_DATABASE"
COMMON=(
  --gen2
  --project="$PROJECT"
  --region="$REGION"
  --runtime="$RUNTIME"
  --source="$STAGE"
  --memory="$MEMORY"
  --set-secrets="$SECRETS"
)
if [[ -n "$SERVICE_ACCOUNT" ]]; then
  COMMON+=(--service-account="$SERVICE_ACCOUNT")
fi

# 2. Firestore: no client access (rules) and the collection-group index the dispatcher's
#    query needs (indexes). gcloud can set neither a rules release nor a collection-group
#    single-field index, so this uses the firebase CLI.
if [[ -z "${SKIP_FIRESTORE:-}" ]]; then
  cp "$DEPLOY_DIR/firestore.rules" "$DEPLOY_DIR/firestore.indexes.json" "$STAGE/"
  cat >"$STAGE/firebase.json" <<EOF
{"firestore": {"database": "$TRIGGER_DATABASE", "rules": "firestore.rules", "indexes": "firestore.indexes.json"}}
EOF
  run firebase deploy --only firestore --project "$PROJECT" --config "$STAGE/firebase.json" \
    --non-interactive
fi

# 3. The trigger: every write of a task-run document (created, handed off, re-triggered) runs
#    on_task_run. --retry redelivers an event whose invocation failed; claims make that safe.
run gcloud functions deploy llm-scheduler-on-task-run \
  "${COMMON[@]}" \
  --entry-point=on_task_run \
  --trigger-location="$TRIGGER_LOCATION" \
  --trigger-event-filters="type=$TRIGGER_EVENT_TYPE" \
  --trigger-event-filters="database=$TRIGGER_DATABASE" \
  --trigger-event-filters-path-pattern="document=$TRIGGER_PATH_PATTERN" \
  --timeout="${EVENT_TIMEOUT_SECONDS}s" \
  --retry \
  --set-env-vars="LLM_SCHEDULER_STORE=$STORE_URL,LLM_SCHEDULER_TIMEOUT_SECONDS=$EVENT_TIMEOUT_SECONDS"

# 4. Running one task over HTTP (no store involved); callers need roles/run.invoker.
run gcloud functions deploy llm-scheduler-run-task \
  "${COMMON[@]}" \
  --entry-point=run_task_http \
  --trigger-http \
  --no-allow-unauthenticated \
  --timeout="${HTTP_TIMEOUT_SECONDS}s"

# 5. The sweeper: a task whose invocation died stays RUNNING under a lease nobody renews, and no
#    write would trigger it again. Every minute, Cloud Scheduler calls sweep_expired_leases,
#    which puts such tasks back to PENDING (an update, so on_task_run runs them again).
run gcloud functions deploy llm-scheduler-sweep \
  "${COMMON[@]}" \
  --entry-point=sweep_expired_leases \
  --trigger-http \
  --no-allow-unauthenticated \
  --timeout=60s \
  --set-env-vars="LLM_SCHEDULER_STORE=$STORE_URL"
SWEEP_URL="https://$REGION-$PROJECT.cloudfunctions.net/llm-scheduler-sweep"
run gcloud scheduler jobs create http llm-scheduler-sweep \
  --project="$PROJECT" --location="$REGION" --schedule="* * * * *" \
  --uri="$SWEEP_URL" --http-method=POST \
  --oidc-service-account-email="${SCHEDULER_SERVICE_ACCOUNT:-$PROJECT@appspot.gserviceaccount.com}"
