#!/usr/bin/env bash
# Deploys llm-scheduler to Google Cloud: the APIs it uses, Firestore indexes and rules, the five
# functions (on_task_run and on_run_request triggered by Firestore, run_task_http, the lease
# sweeper, the schedule firer) and the Cloud Scheduler jobs that call the last two every minute. Safe to run again: every step creates what
# is missing and updates what exists. See deploy/README.md for what each setting is for.
#
# Usage:
#   PROJECT=my-project deploy/deploy.sh
#   DRY_RUN=1 PROJECT=my-project deploy/deploy.sh    # print the changes, make none
#
# DRY_RUN still reads the project with gcloud (describe calls change nothing), so the commands
# it prints are the ones a real run would make.
#
# Settings (environment variables):
#   PROJECT           Google Cloud project (default: gcloud's configured project)
#   DATABASE          Firestore database id (default: TRIGGER_DATABASE of trigger.env)
#   REGION            where the functions and the scheduler job run (default: the database's
#                     region; for the multi-regions nam5 and eur3, the region Eventarc serves
#                     their triggers from: us-central1 and europe-west4)
#   MEMORY            memory of each function (default: 512Mi)
#   SERVICE_ACCOUNT   the functions' runtime service account (default: the compute default)
#   SECRETS           provider keys, VARIABLE=secret:version pairs, comma-separated (default:
#                     OPENAI_API_KEY=openai-api-key:latest,GEMINI_API_KEY=gemini-api-key:latest,
#                     ANTHROPIC_API_KEY=anthropic-api-key:latest). Only the functions that call
#                     models get them, and only the secrets that exist (the others are listed).
#   SWEEPER_SERVICE_ACCOUNT
#                     the identity Cloud Scheduler calls the sweeper and the schedule firer with
#                     (default: llm-scheduler-sweeper@PROJECT.iam.gserviceaccount.com, created
#                     if missing)
#   SKIP_FIRESTORE_RULES=1
#                     do not release firestore.rules. The indexes are always deployed: the
#                     sweeper's and the dispatcher's queries need them.
#   PYTHON            the Python 3.11+ that builds the wheel (default: python3)
#
# Needs: gcloud (authenticated), the firebase CLI (indexes and rules), python3 with pip.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$DEPLOY_DIR")"

# The triggers' event types, database and path patterns: one place, also checked by the tests.
# shellcheck source-path=SCRIPTDIR source=trigger.env
source "$DEPLOY_DIR/trigger.env"

DRY_RUN="${DRY_RUN:-}"
PYTHON="${PYTHON:-python3}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}"
DATABASE="${DATABASE:-$TRIGGER_DATABASE}"
REGION="${REGION:-}"
MEMORY="${MEMORY:-512Mi}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-}"
SECRETS="${SECRETS:-OPENAI_API_KEY=openai-api-key:latest,GEMINI_API_KEY=gemini-api-key:latest,ANTHROPIC_API_KEY=anthropic-api-key:latest}"
# The Python the lock was made with and the tests run on (a test checks they agree).
RUNTIME="python311"
# Cloud Functions' maximum for event-driven functions; the code hands a task off a minute
# before it (LLM_SCHEDULER_TIMEOUT_SECONDS must say the same).
EVENT_TIMEOUT_SECONDS=540
HTTP_TIMEOUT_SECONDS=3600
REQUEST_TIMEOUT_SECONDS=120
SWEEP_FUNCTION="llm-scheduler-sweep"
SWEEP_JOB="llm-scheduler-sweep"
SWEEPER_ACCOUNT_ID="llm-scheduler-sweeper"
SCHEDULES_FUNCTION="llm-scheduler-fire-schedules"
SCHEDULES_JOB="llm-scheduler-fire-schedules"
APIS=(
  artifactregistry.googleapis.com
  cloudbuild.googleapis.com
  cloudfunctions.googleapis.com
  cloudscheduler.googleapis.com
  eventarc.googleapis.com
  firestore.googleapis.com
  iam.googleapis.com
  run.googleapis.com
  secretmanager.googleapis.com
)

say() { printf '%s\n' "$*" >&2; }
fail() {
  say "error: $*"
  exit 2
}

# Commands that change something: printed (as shell words) under DRY_RUN, run otherwise.
run() {
  if [[ -n "$DRY_RUN" ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# The same, retried a few times: a service account just created takes a moment to be usable.
run_retried() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if run "$@"; then
      return 0
    fi
    say "retrying in $((attempt * 5))s: $1 $2 $3"
    sleep $((attempt * 5))
  done
  return 1
}

# Read-only lookups run even under DRY_RUN; they print the value, or fail when it is missing.
exists() { "$@" >/dev/null 2>&1; }

[[ -n "$PROJECT" ]] || fail "set PROJECT (or gcloud config set project ...)"
if [[ -n "${SKIP_FIRESTORE:-}" ]]; then
  say "warning: SKIP_FIRESTORE is replaced by SKIP_FIRESTORE_RULES; the indexes are deployed" \
    "anyway (the sweeper's crash recovery and the dispatcher query task runs through them)"
  SKIP_FIRESTORE_RULES=1
fi
if [[ -z "$DRY_RUN" ]] && ! command -v firebase >/dev/null; then
  fail "the firebase CLI deploys the Firestore indexes the sweeper needs: npm install -g firebase-tools"
fi

# 1. The APIs (enabling one that is on changes nothing).
run gcloud services enable "${APIS[@]}" --project="$PROJECT"

# 2. Where the database is. A Firestore trigger lives in the database's location (nam5, eur3 or
#    a region); the functions run in a region, the one Eventarc serves the triggers from unless
#    REGION says otherwise.
LOCATION="$(gcloud firestore databases describe --project="$PROJECT" --database="$DATABASE" \
  --format='value(locationId)' 2>/dev/null)" ||
  fail "no Firestore database $DATABASE in $PROJECT: create one in native mode" \
    "(gcloud firestore databases create --database=$DATABASE --location=...)"
[[ -n "$LOCATION" ]] || fail "cannot read the location of Firestore database $DATABASE"
case "$LOCATION" in
  nam5) NEAR_REGION=us-central1 ;;
  eur3) NEAR_REGION=europe-west4 ;;
  *-*[0-9]) NEAR_REGION="$LOCATION" ;;
  *) NEAR_REGION="" ;;
esac
if [[ -z "$REGION" ]]; then
  [[ -n "$NEAR_REGION" ]] ||
    fail "the database is in the multi-region $LOCATION: set REGION to one of its regions"
  REGION="$NEAR_REGION"
elif [[ "$REGION" != "$NEAR_REGION" ]]; then
  say "note: the functions run in $REGION, the database's triggers are served from" \
    "${NEAR_REGION:-$LOCATION}: each event crosses regions"
fi
say "database $DATABASE in $LOCATION; triggers in $LOCATION, functions in $REGION"

# 3. Stage the function source: main.py, requirements.txt (every dependency pinned as in the
#    lock, so the deployment runs what the tests ran) and the package as a wheel.
"$PYTHON" "$REPO_ROOT/scripts/function_requirements.py" --check
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/llm-scheduler-functions.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/wheels"
cp "$REPO_ROOT/functions/main.py" "$REPO_ROOT/functions/requirements.txt" "$STAGE/"
run "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$STAGE/wheels" "$REPO_ROOT"
if [[ -n "$DRY_RUN" ]]; then
  WHEEL="llm_scheduler-VERSION-py3-none-any.whl"
else
  WHEEL="$(cd "$STAGE/wheels" && ls llm_scheduler-*.whl)"
fi
printf './wheels/%s[firestore,cloud,openai,gemini,anthropic,otel]\n' "$WHEEL" >>"$STAGE/requirements.txt"

# 4. Firestore: the indexes (the collection-group query on task-run status that the sweeper and
#    the dispatcher make) and the rules (no client access). gcloud can set neither a
#    collection-group single-field index nor a rules release, so this uses the firebase CLI.
cp "$DEPLOY_DIR/firestore.rules" "$DEPLOY_DIR/firestore.indexes.json" "$STAGE/"
cat >"$STAGE/firebase.json" <<EOF
{"firestore": {"database": "$DATABASE", "rules": "firestore.rules", "indexes": "firestore.indexes.json"}}
EOF
FIRESTORE_TARGETS="firestore:indexes"
if [[ -n "${SKIP_FIRESTORE_RULES:-}" ]]; then
  say "warning: firestore.rules not released (SKIP_FIRESTORE_RULES): clients keep the rules" \
    "the database has now"
else
  FIRESTORE_TARGETS="firestore:indexes,firestore:rules"
fi
run firebase deploy --only "$FIRESTORE_TARGETS" --project "$PROJECT" --config "$STAGE/firebase.json" \
  --non-interactive

# 5. Provider keys: only the secrets that exist, only for the functions that call models.
present=()
absent=()
IFS=',' read -r -a secret_items <<<"$SECRETS"
for item in "${secret_items[@]}"; do
  [[ -n "$item" ]] || continue
  reference="${item#*=}"
  if exists gcloud secrets describe "${reference%%:*}" --project="$PROJECT"; then
    present+=("$item")
  else
    absent+=("${reference%%:*} (${item%%=*})")
  fi
done
if ((${#absent[@]})); then
  absent_list="$(printf '%s, ' "${absent[@]}")"
  say "warning: not in Secret Manager, so not given to the functions: ${absent_list%, }." \
    "Steps of those providers fail with a missing-key error until you create them" \
    "(printf %s \"\$KEY\" | gcloud secrets create NAME --data-file=-) and deploy again."
fi
if ((${#present[@]})); then
  MODEL_SECRETS=("--set-secrets=$(IFS=','; echo "${present[*]}")")
else
  MODEL_SECRETS=(--clear-secrets)
fi

STORE_URL="firestore://$PROJECT/$DATABASE"
COMMON=(
  --gen2
  --project="$PROJECT"
  --region="$REGION"
  --runtime="$RUNTIME"
  --source="$STAGE"
  --memory="$MEMORY"
)
if [[ -n "$SERVICE_ACCOUNT" ]]; then
  COMMON+=(--service-account="$SERVICE_ACCOUNT")
fi

# 6. The task-run trigger: every write of a task-run document (created, handed off,
#    re-triggered) runs on_task_run. --retry redelivers an event whose invocation failed; claims
#    make that safe, and events that can never succeed are acknowledged, not failed.
run gcloud functions deploy llm-scheduler-on-task-run \
  "${COMMON[@]}" \
  --entry-point=on_task_run \
  --trigger-location="$LOCATION" \
  --trigger-event-filters="type=$TRIGGER_EVENT_TYPE" \
  --trigger-event-filters="database=$DATABASE" \
  --trigger-event-filters-path-pattern="document=$TRIGGER_PATH_PATTERN" \
  --timeout="${EVENT_TIMEOUT_SECONDS}s" \
  --retry \
  "${MODEL_SECRETS[@]}" \
  --set-env-vars="LLM_SCHEDULER_STORE=$STORE_URL,LLM_SCHEDULER_TIMEOUT_SECONDS=$EVENT_TIMEOUT_SECONDS"

# 7. Run requests: creating run_requests/{request_id} starts a run (docs/run_requests.md). The
#    function validates and submits; it calls no model, so it holds no keys.
run gcloud functions deploy llm-scheduler-on-run-request \
  "${COMMON[@]}" \
  --entry-point=on_run_request \
  --trigger-location="$LOCATION" \
  --trigger-event-filters="type=$REQUEST_TRIGGER_EVENT_TYPE" \
  --trigger-event-filters="database=$DATABASE" \
  --trigger-event-filters-path-pattern="document=$REQUEST_TRIGGER_PATH_PATTERN" \
  --timeout="${REQUEST_TIMEOUT_SECONDS}s" \
  --retry \
  --clear-secrets \
  --set-env-vars="LLM_SCHEDULER_STORE=$STORE_URL"

# 8. Running one task over HTTP (no store involved); callers need roles/run.invoker.
run gcloud functions deploy llm-scheduler-run-task \
  "${COMMON[@]}" \
  --entry-point=run_task_http \
  --trigger-http \
  --no-allow-unauthenticated \
  --timeout="${HTTP_TIMEOUT_SECONDS}s" \
  "${MODEL_SECRETS[@]}"

# 9. The sweeper: a task whose invocation died stays RUNNING under a lease nobody renews, and no
#    write would trigger it again. Every minute, Cloud Scheduler calls sweep_expired_leases,
#    which puts such tasks back to PENDING (an update, so on_task_run runs them again).
run gcloud functions deploy "$SWEEP_FUNCTION" \
  "${COMMON[@]}" \
  --entry-point=sweep_expired_leases \
  --trigger-http \
  --no-allow-unauthenticated \
  --timeout=60s \
  --clear-secrets \
  --set-env-vars="LLM_SCHEDULER_STORE=$STORE_URL"

# Cloud Scheduler calls it as a service account of its own, allowed to invoke the sweeper only.
SWEEPER_SA="${SWEEPER_SERVICE_ACCOUNT:-$SWEEPER_ACCOUNT_ID@$PROJECT.iam.gserviceaccount.com}"
if ! exists gcloud iam service-accounts describe "$SWEEPER_SA" --project="$PROJECT"; then
  [[ "$SWEEPER_SA" == "$SWEEPER_ACCOUNT_ID@$PROJECT.iam.gserviceaccount.com" ]] ||
    fail "service account $SWEEPER_SA (SWEEPER_SERVICE_ACCOUNT) does not exist"
  run gcloud iam service-accounts create "$SWEEPER_ACCOUNT_ID" --project="$PROJECT" \
    --display-name="llm-scheduler lease sweeper" \
    --description="Cloud Scheduler calls the llm-scheduler-sweep function as this account"
fi
run_retried gcloud run services add-iam-policy-binding "$SWEEP_FUNCTION" \
  --project="$PROJECT" --region="$REGION" \
  --member="serviceAccount:$SWEEPER_SA" --role=roles/run.invoker

SWEEP_URL="$(gcloud functions describe "$SWEEP_FUNCTION" --project="$PROJECT" --region="$REGION" \
  --format='value(serviceConfig.uri)' 2>/dev/null || true)"
if [[ -z "$SWEEP_URL" ]]; then
  [[ -n "$DRY_RUN" ]] || fail "cannot read the URL of the $SWEEP_FUNCTION function"
  SWEEP_URL="https://SWEEP-FUNCTION-URL"
fi
if exists gcloud scheduler jobs describe "$SWEEP_JOB" --project="$PROJECT" --location="$REGION"; then
  SCHEDULE_VERB=update
else
  SCHEDULE_VERB=create
fi
run gcloud scheduler jobs "$SCHEDULE_VERB" http "$SWEEP_JOB" \
  --project="$PROJECT" --location="$REGION" --schedule="* * * * *" \
  --uri="$SWEEP_URL" --http-method=POST \
  --oidc-service-account-email="$SWEEPER_SA" --oidc-token-audience="$SWEEP_URL"

# 10. Schedules (docs/schedules.md): every minute, Cloud Scheduler calls fire_schedules, which
#     starts the runs of the due slots (each slot once, however often it is called). It submits
#     runs and calls no model, so it holds no keys; the sweeper's account calls it.
run gcloud functions deploy "$SCHEDULES_FUNCTION" \
  "${COMMON[@]}" \
  --entry-point=fire_schedules \
  --trigger-http \
  --no-allow-unauthenticated \
  --timeout=120s \
  --clear-secrets \
  --set-env-vars="LLM_SCHEDULER_STORE=$STORE_URL"
run_retried gcloud run services add-iam-policy-binding "$SCHEDULES_FUNCTION" \
  --project="$PROJECT" --region="$REGION" \
  --member="serviceAccount:$SWEEPER_SA" --role=roles/run.invoker
SCHEDULES_URL="$(gcloud functions describe "$SCHEDULES_FUNCTION" --project="$PROJECT" \
  --region="$REGION" --format='value(serviceConfig.uri)' 2>/dev/null || true)"
if [[ -z "$SCHEDULES_URL" ]]; then
  [[ -n "$DRY_RUN" ]] || fail "cannot read the URL of the $SCHEDULES_FUNCTION function"
  SCHEDULES_URL="https://FIRE-SCHEDULES-FUNCTION-URL"
fi
if exists gcloud scheduler jobs describe "$SCHEDULES_JOB" --project="$PROJECT" \
  --location="$REGION"; then
  SCHEDULE_VERB=update
else
  SCHEDULE_VERB=create
fi
run gcloud scheduler jobs "$SCHEDULE_VERB" http "$SCHEDULES_JOB" \
  --project="$PROJECT" --location="$REGION" --schedule="* * * * *" \
  --uri="$SCHEDULES_URL" --http-method=POST \
  --oidc-service-account-email="$SWEEPER_SA" --oidc-token-audience="$SCHEDULES_URL"

if [[ -n "$DRY_RUN" ]]; then
  say "dry run: nothing changed; the commands above are what a deployment to $PROJECT would run"
else
  say "deployed to $PROJECT: on_task_run, on_run_request, run_task_http, the sweeper and" \
    "fire_schedules (both every minute, as $SWEEPER_SA)"
fi
