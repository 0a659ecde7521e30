{{/* One stage: Deployment, Service (admin port, plus the API port of the
     HTTP stages) and PodDisruptionBudget.
     (dict "root" $ "component" "ingest" "args" (list "ingest")
           "httpPort" 0 "keyItems" (list) "dbItem" "database-url") */}}
{{- define "anchord.workload" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $v := index $root.Values $component -}}
{{- $fullname := include "anchord.fullname" $root -}}
{{- $sel := include "anchord.selectorLabels" (dict "root" $root "component" $component) -}}
{{- $hpa := and (eq $component "verifier") $root.Values.verifier.autoscaling.enabled -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}-{{ $component }}
  labels:
    {{- include "anchord.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
spec:
  {{- if not $hpa }}
  replicas: {{ int $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "anchord.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if not $root.Values.secrets.existingSecret }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        anchord.io/drain-seconds: {{ include "anchord.drainSeconds" (dict "root" $root "component" $component) | quote }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "anchord.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # Above the stage's drain time (annotation anchord.io/drain-seconds):
      # SIGTERM, drain, exit before Kubernetes sends SIGKILL.
      terminationGracePeriodSeconds: {{ include "anchord.gracePeriod" (dict "root" $root "component" $component) }}
      containers:
        - name: {{ $component }}
          image: {{ include "anchord.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["anchord"]
          args:
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            - "--config"
            - {{ include "anchord.configPath" $root | quote }}
          env:
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "anchord.secretName" $root }}
                  key: {{ .dbItem }}
            - name: ANCHORD_LOG_FORMAT
              value: {{ $root.Values.logFormat | quote }}
            - name: ANCHORD_LOG
              value: {{ $root.Values.logLevel | quote }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: admin
              containerPort: {{ int $root.Values.admin.port }}
              protocol: TCP
            {{- if .httpPort }}
            - name: http
              containerPort: {{ int .httpPort }}
              protocol: TCP
            {{- end }}
          livenessProbe:
            httpGet:
              path: /livez
              port: admin
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: {{ include "anchord.configDir" $root }}
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- if .keyItems }}
            - name: keys
              mountPath: {{ include "anchord.keyDir" $root }}
              readOnly: true
            {{- end }}
            {{- with .mounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "anchord.configMapName" $root }}
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if .keyItems }}
        - name: keys
          secret:
            secretName: {{ include "anchord.secretName" $root }}
            defaultMode: 0400
            items:
              {{- range .keyItems }}
              - key: {{ . }}
                path: {{ . }}
              {{- end }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}-{{ $component }}
  labels:
    {{- include "anchord.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
    anchord.io/metrics: "true"
spec:
  type: {{ if .httpPort }}{{ $v.service.type | default "ClusterIP" }}{{ else }}ClusterIP{{ end }}
  selector:
    {{- $sel | nindent 4 }}
  ports:
    - name: admin
      port: {{ int $root.Values.admin.port }}
      targetPort: admin
      protocol: TCP
    {{- if .httpPort }}
    - name: http
      port: {{ int .httpPort }}
      targetPort: http
      protocol: TCP
    {{- end }}
{{- if $v.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $fullname }}-{{ $component }}
  labels:
    {{- include "anchord.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
{{- end }}
{{- end -}}
