#!/usr/bin/env bash
# A CI job step: preview the stack in the current directory and publish what will happen to each
# libvirt domain as Markdown (action, XML changes by path, restarts, guest UUID before -> after).
#
#   cd my-infra && bash ci-preview.sh [STACK]
#
# Writes preview.json and preview-report.md; appends the report to $GITHUB_STEP_SUMMARY when set
# (GitHub Actions shows it on the run page), so a pull request's reviewers see it. Exits with
# `pulumi preview`'s status, so a preview that fails (bad input) fails the job.
set -uo pipefail
stack_args=()
[ -n "${1:-}" ] && stack_args=(--stack "$1")
report_cmd=${LIBVIRT_DOMAIN_CLI:-npx libvirt-domain}

pulumi preview --json --diff "${stack_args[@]}" > preview.json
status=$?
if ! $report_cmd preview-report preview.json > preview-report.md; then
  echo "ci-preview: could not read the preview (pulumi preview exited $status); see preview.json" >&2
  exit 1
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat preview-report.md >> "$GITHUB_STEP_SUMMARY"; fi
cat preview-report.md
exit $status
