{{/*
The chart's name.
*/}}
{{- define "stampede.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified app name, cut to leave room for the longest suffix ("-workload-arm64", 15
characters) within the 63 characters of a DNS label.
*/}}
{{- define "stampede.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the chart label.
*/}}
{{- define "stampede.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "stampede.labels" -}}
helm.sh/chart: {{ include "stampede.chart" . }}
{{ include "stampede.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stampede
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "stampede.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stampede.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: (dict "ctx" $ "component" "master").
*/}}
{{- define "stampede.componentLabels" -}}
{{ include "stampede.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "stampede.componentSelectorLabels" -}}
{{ include "stampede.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The workload server's labels add its arch: (dict "ctx" $ "arch" "arm64").
*/}}
{{- define "stampede.workloadSelectorLabels" -}}
{{ include "stampede.componentSelectorLabels" (dict "ctx" .ctx "component" "workload") }}
stampede.dev/arch: {{ .arch }}
{{- end }}

{{/*
Names of the parts.
*/}}
{{- define "stampede.masterName" -}}
{{- printf "%s-master" (include "stampede.fullname" .) }}
{{- end }}

{{- define "stampede.workerName" -}}
{{- printf "%s-worker" (include "stampede.fullname" .) }}
{{- end }}

{{/* (dict "ctx" $ "arch" "arm64") */}}
{{- define "stampede.workloadName" -}}
{{- printf "%s-workload-%s" (include "stampede.fullname" .ctx) .arch }}
{{- end }}

{{- define "stampede.scenarioName" -}}
{{- printf "%s-scenario" (include "stampede.fullname" .) }}
{{- end }}

{{- define "stampede.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stampede.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image, tagged with appVersion unless image.tag is set.
*/}}
{{- define "stampede.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The Secret and key holding the worker token.
*/}}
{{- define "stampede.tokenSecretName" -}}
{{- default (printf "%s-token" (include "stampede.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "stampede.tokenSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/*
The address workers dial: the master Service's gRPC port.
*/}}
{{- define "stampede.masterAddress" -}}
{{- printf "http://%s:%d" (include "stampede.masterName" .) (int .Values.master.grpcPort) }}
{{- end }}

{{/*
Workers the master waits for: master.expectWorkers, else the workers' replicas (the
autoscaler's minimum when one scales them).
*/}}
{{- define "stampede.expectWorkers" -}}
{{- if not (kindIs "invalid" .Values.master.expectWorkers) }}
{{- .Values.master.expectWorkers }}
{{- else if eq (include "stampede.kedaActive" .) "true" }}
{{- .Values.worker.keda.minReplicaCount }}
{{- else if .Values.worker.autoscaling.enabled }}
{{- .Values.worker.autoscaling.minReplicas }}
{{- else }}
{{- .Values.worker.replicas }}
{{- end }}
{{- end }}

{{/*
How long the master stays up after its run.
*/}}
{{- define "stampede.linger" -}}
{{- if not (kindIs "invalid" .Values.master.linger) }}
{{- .Values.master.linger }}
{{- else if eq .Values.master.mode "deployment" }}
{{- "forever" }}
{{- else }}
{{- "30s" }}
{{- end }}
{{- end }}

{{/*
The scenario file: the user's, verbatim, or the built-in one.
*/}}
{{- define "stampede.scenario" -}}
{{- if .Values.scenario }}
{{- .Values.scenario }}
{{- else }}
{{- tpl (.Files.Get "files/scenario.toml") . }}
{{- end }}
{{- end }}

{{/*
Pod placement: nodeSelector, affinity, tolerations of one role (a values map).
*/}}
{{- define "stampede.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The pod-level settings every pod shares.
*/}}
{{- define "stampede.podCommon" -}}
serviceAccountName: {{ include "stampede.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/*
The worker token as an environment variable.
*/}}
{{- define "stampede.tokenEnv" -}}
- name: STAMPEDE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "stampede.tokenSecretName" . }}
      key: {{ include "stampede.tokenSecretKey" . }}
{{- end }}

{{/*
"true" when KEDA scales the workers: enabled, and its CRD is in the cluster.
*/}}
{{- define "stampede.kedaActive" -}}
{{- and .Values.worker.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1/ScaledObject") }}
{{- end }}

{{/*
TLS on the gRPC channel: the Secret of one side, checked.
*/}}
{{- define "stampede.tlsSecret" -}}
{{- $t := .ctx.Values.tls }}
{{- $name := index $t (printf "%sSecret" .side) }}
{{- if not $name }}
{{- fail (printf "tls.enabled needs tls.%sSecret (a Secret with tls.crt, tls.key and ca.crt)" .side) }}
{{- end }}
{{- $name }}
{{- end }}

{{/*
The master's TLS environment (files from its Secret, mounted at /etc/stampede/tls).
*/}}
{{- define "stampede.masterTlsEnv" -}}
{{- if .Values.tls.enabled }}
- name: STAMPEDE_TLS_CERT
  value: /etc/stampede/tls/tls.crt
- name: STAMPEDE_TLS_KEY
  value: /etc/stampede/tls/tls.key
{{- if .Values.tls.mutual }}
- name: STAMPEDE_TLS_CLIENT_CA
  value: /etc/stampede/tls/ca.crt
{{- end }}
{{- end }}
{{- end }}

{{/*
The workers' TLS environment.
*/}}
{{- define "stampede.workerTlsEnv" -}}
{{- if .Values.tls.enabled }}
- name: STAMPEDE_TLS_CA
  value: /etc/stampede/tls/ca.crt
- name: STAMPEDE_TLS_DOMAIN
  value: {{ default (include "stampede.masterName" .) .Values.tls.domain | quote }}
{{- if .Values.tls.mutual }}
- name: STAMPEDE_TLS_CERT
  value: /etc/stampede/tls/tls.crt
- name: STAMPEDE_TLS_KEY
  value: /etc/stampede/tls/tls.key
{{- end }}
{{- end }}
{{- end }}

{{/*
Whether a restarted master resumes its run: master.journal.resume, else on with a persistent
summary volume (the journal lives there).
*/}}
{{- define "stampede.masterResume" -}}
{{- $j := .Values.master.journal -}}
{{- if not $j.enabled -}}
false
{{- else if kindIs "bool" $j.resume -}}
{{- $j.resume -}}
{{- else -}}
{{- .Values.master.summary.persistence.enabled -}}
{{- end -}}
{{- end -}}

{{/*
The CA for https:// targets (values `targetTls`): a Secret mounted read-only where the
scenario's `[target.tls] ca` points. Only the master reads it (at load, like the scenario) and
sends its certificates to the workers with the run, so the master's pod and `helm test`'s check
mount it; the workers need no file.
*/}}
{{- define "stampede.targetCaMount" -}}
{{- with .Values.targetTls }}
{{- if .caSecret -}}
- name: target-ca
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "stampede.targetCaVolume" -}}
{{- with .Values.targetTls }}
{{- if .caSecret -}}
- name: target-ca
  secret:
    secretName: {{ .caSecret }}
    items:
      - key: {{ .caKey }}
        path: {{ .caKey }}
{{- end }}
{{- end }}
{{- end }}
