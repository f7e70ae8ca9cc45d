{{/*
The master's pod template, shared by the Job and the Deployment.
*/}}
{{- define "stampede.masterPod" -}}
{{- $m := .Values.master }}
{{- $interactive := and (eq $m.mode "deployment") $m.tui }}
metadata:
  labels:
    {{- include "stampede.componentLabels" (dict "ctx" . "component" "master") | nindent 4 }}
    {{- with $m.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/scenario: {{ include "stampede.scenario" . | sha256sum }}
    {{- with $m.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "stampede.podCommon" . | nindent 2 }}
  {{- if eq $m.mode "job" }}
  restartPolicy: Never
  {{- end }}
  terminationGracePeriodSeconds: {{ $m.terminationGracePeriodSeconds }}
  {{- with include "stampede.placement" $m | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  containers:
    - name: master
      image: {{ include "stampede.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["stampede-master"]
      args:
        - run
        - /etc/stampede/scenario.toml
        {{- range $key, $value := $m.set }}
        - --set
        - {{ printf "%s=%v" $key $value | quote }}
        {{- end }}
      {{- if $interactive }}
      # `kubectl attach -it` shows the live view.
      stdin: true
      tty: true
      {{- end }}
      env:
        {{- if not $interactive }}
        - name: STAMPEDE_HEADLESS
          value: "true"
        {{- end }}
        - name: STAMPEDE_BIND
          value: {{ printf "0.0.0.0:%d" (int $m.grpcPort) | quote }}
        - name: STAMPEDE_METRICS_BIND
          value: {{ printf "0.0.0.0:%d" (int $m.metricsPort) | quote }}
        - name: STAMPEDE_LOCAL_WORKERS
          value: "0"
        - name: STAMPEDE_EXPECT_WORKERS
          valueFrom:
            configMapKeyRef:
              name: {{ include "stampede.scenarioName" . }}
              key: expect-workers
        - name: STAMPEDE_WAIT_WORKERS
          value: {{ $m.waitWorkers | quote }}
        - name: STAMPEDE_SUMMARY
          value: {{ printf "%s/summary.json" (trimSuffix "/" $m.summary.dir) | quote }}
        - name: STAMPEDE_PRINT_SUMMARY
          value: "true"
        - name: STAMPEDE_STATE_DIR
          value: {{ $m.summary.dir | quote }}
        {{- if not $m.journal.enabled }}
        - name: STAMPEDE_NO_JOURNAL
          value: "true"
        {{- else if eq (include "stampede.masterResume" .) "true" }}
        - name: STAMPEDE_RESUME
          value: "auto"
        {{- end }}
        - name: STAMPEDE_LINGER
          value: {{ include "stampede.linger" . | quote }}
        - name: STAMPEDE_STATUS_EVERY
          value: {{ $m.statusEvery | quote }}
        {{- include "stampede.tokenEnv" . | nindent 8 }}
        {{- include "stampede.masterTlsEnv" . | nindent 8 }}
        {{- with $m.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: {{ $m.grpcPort }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $m.metricsPort }}
          protocol: TCP
      # Ready once it accepts workers; after the run the gRPC port closes.
      readinessProbe:
        tcpSocket:
          port: grpc
        periodSeconds: 5
      resources:
        {{- toYaml $m.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: scenario
          mountPath: /etc/stampede
          readOnly: true
        - name: summary
          mountPath: {{ $m.summary.dir }}
        {{- if .Values.tls.enabled }}
        - name: tls
          mountPath: /etc/stampede/tls
          readOnly: true
        {{- end }}
        {{- with include "stampede.targetCaMount" . }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    {{- with include "stampede.targetCaVolume" . }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ include "stampede.tlsSecret" (dict "ctx" . "side" "master") }}
    {{- end }}
    - name: scenario
      configMap:
        name: {{ include "stampede.scenarioName" . }}
        items:
          - key: scenario.toml
            path: scenario.toml
    - name: summary
      {{- if $m.summary.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ default (printf "%s-summary" (include "stampede.masterName" .)) $m.summary.persistence.existingClaim }}
      {{- else }}
      emptyDir: {}
      {{- end }}
{{- end }}
