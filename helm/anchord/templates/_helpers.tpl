{{/* ---------- names and labels ---------- */}}

{{- define "anchord.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "anchord.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "anchord.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "anchord.labels" -}}
helm.sh/chart: {{ include "anchord.chart" . }}
app.kubernetes.io/name: {{ include "anchord.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: anchord
{{- end -}}

{{/* Selector labels of one stage: (dict "root" $ "component" "ingest"). */}}
{{- define "anchord.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anchord.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "anchord.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "anchord.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "anchord.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "anchord.secretName" -}}
{{- default (printf "%s-secrets" (include "anchord.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "anchord.configMapName" -}}
{{- printf "%s-config" (include "anchord.fullname" .) -}}
{{- end -}}

{{/* Where Secret items are mounted, and the path of one item. */}}
{{- define "anchord.keyDir" -}}/etc/anchord/keys{{- end -}}
{{- define "anchord.configDir" -}}/etc/anchord/config{{- end -}}
{{- define "anchord.configPath" -}}/etc/anchord/config/anchord.toml{{- end -}}

{{/* ---------- anchord.toml ---------- */}}

{{/* A TOML bare key, or a quoted one. */}}
{{- define "anchord.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/* One TOML value: strings (JSON escapes are valid TOML basic strings),
     booleans, integers (YAML numbers arrive as float64), floats, arrays and
     inline tables. null entries of a table are left out. */}}
{{- define "anchord.tomlValue" -}}
{{- $v := . -}}
{{- $t := typeOf $v -}}
{{- if eq $t "json.Number" -}}{{ $v }}
{{- else if kindIs "string" $v -}}{{ toJson $v }}
{{- else if kindIs "bool" $v -}}{{ ternary "true" "false" $v }}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) -}}
{{- if eq (float64 (int64 $v)) (float64 $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) -}}{{ $v }}
{{- else if kindIs "slice" $v -}}
[{{- range $i, $e := $v -}}{{- if $i }}, {{ end -}}{{- include "anchord.tomlValue" $e -}}{{- end -}}]
{{- else if kindIs "map" $v -}}
{{- $parts := list -}}
{{- range $k := keys $v | sortAlpha -}}
{{- $e := get $v $k -}}
{{- if not (kindIs "invalid" $e) -}}
{{- $parts = append $parts (printf "%s = %s" (include "anchord.tomlKey" $k) (include "anchord.tomlValue" $e)) -}}
{{- end -}}
{{- end -}}
{ {{- join ", " $parts -}} }
{{- else -}}
{{- fail (printf "anchord.toml: cannot render %v (a %s)" $v $t) -}}
{{- end -}}
{{- end -}}

{{/* The whole document: top-level keys first, then one [section] per table. */}}
{{- define "anchord.toml" -}}
{{- $c := . -}}
{{- range $k := keys $c | sortAlpha -}}
{{- $v := get $c $k -}}
{{- if and (not (kindIs "map" $v)) (not (kindIs "invalid" $v)) }}
{{ include "anchord.tomlKey" $k }} = {{ include "anchord.tomlValue" $v }}
{{- end -}}
{{- end -}}
{{- range $k := keys $c | sortAlpha -}}
{{- $v := get $c $k -}}
{{- if kindIs "map" $v }}

[{{ include "anchord.tomlKey" $k }}]
{{- range $kk := keys $v | sortAlpha -}}
{{- $vv := get $v $kk -}}
{{- if not (kindIs "invalid" $vv) }}
{{ include "anchord.tomlKey" $kk }} = {{ include "anchord.tomlValue" $vv }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The configuration as JSON: values.config plus the keys the chart owns.
     Callers: fromJson (include "anchord.configJson" .) */}}
{{- define "anchord.configJson" -}}
{{- $root := . -}}
{{- $c := deepCopy (.Values.config | default dict) -}}
{{- range $s := list "database" "admin" "ingest" "batcher" "witness" "relay" "verifier" "workflow" -}}
{{- if not (kindIs "map" (get $c $s)) -}}{{- $_ := set $c $s dict -}}{{- end -}}
{{- end -}}
{{- $keys := include "anchord.keyDir" . -}}
{{- $_ := set $c.admin "listen" (printf "0.0.0.0:%d" (int .Values.admin.port)) -}}
{{- $_ := set $c.ingest "brokers" .Values.kafka.brokers -}}
{{- $_ := set $c.ingest "topic_partitions" (int .Values.kafka.partitions) -}}
{{- $_ := set $c.batcher "signing_key" (printf "%s/%s" $keys .Values.secrets.keys.sealerKey) -}}
{{- if .Values.batcher.sealerVkey -}}
{{- $_ := set $c.batcher "sealer_vkey" .Values.batcher.sealerVkey -}}
{{- end -}}
{{- $svcDomain := printf "%s.svc" .Release.Namespace -}}
{{- if and .Values.witness.enabled .Values.witness.vkey -}}
{{- $url := printf "http://%s-witness.%s:%d" (include "anchord.fullname" .) $svcDomain (int .Values.witness.port) -}}
{{- $own := dict "name" (splitList "+" .Values.witness.vkey | first) "url" $url "vkey" .Values.witness.vkey -}}
{{- $_ := set $c.batcher "witnesses" (append ($c.batcher.witnesses | default list) $own) -}}
{{- end -}}
{{- $_ := set $c.witness "listen" (printf "0.0.0.0:%d" (int .Values.witness.port)) -}}
{{- $_ := set $c.witness "signing_key" (printf "%s/%s" $keys .Values.secrets.keys.witnessKey) -}}
{{- if and (empty $c.witness.logs) .Values.batcher.sealerVkey -}}
{{- $log := dict "origin" ($c.batcher.origin | default "anchord.local/ledger") "hash_suite" ($c.hash_suite | default "sha256") "vkeys" (list .Values.batcher.sealerVkey) -}}
{{- $_ := set $c.witness "logs" (list $log) -}}
{{- end -}}
{{- $targets := list -}}
{{- range $t := ($c.relay.targets | default list) -}}
{{- $t2 := deepCopy $t -}}
{{- if not (hasKey $t2 "signing_key") -}}
{{- $_ := set $t2 "signing_key" (printf "%s/%s" $keys $root.Values.secrets.keys.relaySignerKey) -}}
{{- end -}}
{{- $targets = append $targets $t2 -}}
{{- end -}}
{{- $_ := set $c.relay "targets" $targets -}}
{{- $_ := set $c.verifier "listen" (printf "0.0.0.0:%d" (int .Values.verifier.port)) -}}
{{- if empty $c.verifier.public_url -}}
{{- $_ := set $c.verifier "public_url" (printf "http://%s-verifier.%s:%d" (include "anchord.fullname" .) $svcDomain (int .Values.verifier.port)) -}}
{{- end -}}
{{- if .Values.workflow.enabled -}}
{{- $_ := set $c.workflow "listen" (printf "0.0.0.0:%d" (int .Values.workflow.port)) -}}
{{- $_ := set $c.workflow "storage_dir" .Values.workflow.storage.mountPath -}}
{{- if .Values.workflow.keyEncryptionKey.enabled -}}
{{- $_ := set $c.workflow "key_encryption_key_file" (printf "%s/%s" $keys .Values.secrets.keys.workflowKek) -}}
{{- end -}}
{{- /* The monitoring page's instances: each enabled stage's admin Service
     (one address per stage; set workflow.monitor.instances to list pods). */ -}}
{{- if not (kindIs "map" (get $c.workflow "monitor")) -}}{{- $_ := set $c.workflow "monitor" dict -}}{{- end -}}
{{- if empty (get $c.workflow.monitor "instances") -}}
{{- $inst := list -}}
{{- range $s := list "ingest" "batcher" "relay" "verifier" "witness" "workflow" -}}
{{- if (index $root.Values $s).enabled -}}
{{- $inst = append $inst (printf "http://%s-%s.%s:%d" (include "anchord.fullname" $root) $s $svcDomain (int $root.Values.admin.port)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $c.workflow.monitor "instances" $inst -}}
{{- end -}}
{{- else -}}
{{- $_ := unset $c "workflow" -}}
{{- end -}}
{{- range $s := list "database" "admin" "ingest" "batcher" "witness" "relay" "verifier" -}}
{{- if empty (get $c $s) -}}{{- $_ := unset $c $s -}}{{- end -}}
{{- end -}}
{{- toJson $c -}}
{{- end -}}

{{/* Does the relay need the Secret's signer key (a target without its own)? */}}
{{- define "anchord.relayNeedsSignerKey" -}}
{{- range $t := (.Values.config.relay.targets | default list) -}}
{{- if not (hasKey $t "signing_key") -}}yes{{- end -}}
{{- end -}}
{{- end -}}

{{/* ---------- shutdown: drain time and grace period ---------- */}}

{{/* Seconds a stage may keep working after SIGTERM, from the same
     configuration the pods get (see `anchord config check` and
     values.yaml's `shutdown`): (dict "root" $ "component" "ingest"). */}}
{{- define "anchord.drainSeconds" -}}
{{- $root := .root -}}
{{- $c := fromJson (include "anchord.configJson" $root) -}}
{{- if eq .component "ingest" -}}
{{- $ms := int64 (dig "ingest" "drain_timeout_ms" 30000 $c) -}}
{{- div (add $ms 999) 1000 -}}
{{- else if eq .component "batcher" -}}
{{- $attempts := int64 (dig "batcher" "witness_attempts" 3 $c) -}}
{{- $timeout := int64 (dig "batcher" "request_timeout_ms" 5000 $c) -}}
{{- $steps := list 100 200 400 800 1600 3200 6400 -}}
{{- $backoff := 0 -}}
{{- range $a := untilStep 1 (int $attempts) 1 -}}
{{- $backoff = add $backoff (index $steps (min $a 6)) -}}
{{- end -}}
{{- $ms := add (mul (add 1 $attempts) $timeout) $backoff 1000 -}}
{{- div (add $ms 999) 1000 -}}
{{- else if eq .component "relay" -}}
{{- $ms := 0 -}}
{{- range $t := (dig "relay" "targets" list $c) -}}
{{- $ms = max $ms (mul 3 (int64 (dig "request_timeout_ms" 10000 $t))) -}}
{{- end -}}
{{- div (add $ms 999) 1000 -}}
{{- else -}}
{{- int64 (index $root.Values .component).drainSeconds -}}
{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the explicit value (checked to exceed
     the drain time) or drain + shutdown.marginSeconds. */}}
{{- define "anchord.gracePeriod" -}}
{{- $drain := int64 (include "anchord.drainSeconds" .) -}}
{{- $explicit := (index .root.Values .component).terminationGracePeriodSeconds -}}
{{- if not (kindIs "invalid" $explicit) -}}
{{- if le (int64 $explicit) $drain -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must exceed the %s drain time (%d s): Kubernetes would kill it mid-drain" .component (int64 $explicit) .component $drain) -}}
{{- end -}}
{{- int64 $explicit -}}
{{- else -}}
{{- add $drain (int64 .root.Values.shutdown.marginSeconds) -}}
{{- end -}}
{{- end -}}

{{/* ---------- checks that fail the render ---------- */}}
{{- define "anchord.validate" -}}
{{- if and .Values.ingest.enabled (gt (int .Values.ingest.replicas) (int .Values.kafka.partitions)) -}}
{{- fail (printf "ingest.replicas (%d) exceeds kafka.partitions (%d): a consumer group never gives one partition to two consumers, the extra ingest pods would idle" (int .Values.ingest.replicas) (int .Values.kafka.partitions)) -}}
{{- end -}}
{{- if and .Values.workflow.enabled (gt (int .Values.workflow.replicas) 1) .Values.workflow.storage.persistence.enabled (not (has "ReadWriteMany" .Values.workflow.storage.persistence.accessModes)) -}}
{{- fail (printf "workflow.replicas (%d) > 1 needs workflow.storage.persistence.accessModes to include ReadWriteMany: every replica reads and writes the same uploaded files" (int .Values.workflow.replicas)) -}}
{{- end -}}
{{- if lt (int .Values.kafka.partitions) 1 -}}
{{- fail "kafka.partitions must be at least 1" -}}
{{- end -}}
{{- if lt (int64 .Values.shutdown.marginSeconds) 1 -}}
{{- fail "shutdown.marginSeconds must be at least 1" -}}
{{- end -}}
{{- if and .Values.verifier.enabled .Values.verifier.autoscaling.enabled (gt (int .Values.verifier.autoscaling.minReplicas) (int .Values.verifier.autoscaling.maxReplicas)) -}}
{{- fail "verifier.autoscaling.minReplicas exceeds maxReplicas" -}}
{{- end -}}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.databaseUrl .Values.secrets.sealerKey .Values.secrets.witnessKey .Values.secrets.relaySignerKey .Values.secrets.witnessDatabaseUrl) -}}
{{- fail "secrets.existingSecret is set: leave secrets.databaseUrl and the key contents empty (they would be ignored)" -}}
{{- end -}}
{{- range $k := list "admin" -}}
{{- if hasKey ($.Values.config | default dict) $k -}}
{{- fail (printf "config.%s is owned by the chart (admin.port)" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ---------- the chart-created Secret ---------- */}}
{{/* (dict "root" $ "hook" bool): the release's Secret, or, for the migrate
     hook (which runs before release objects exist on install), a hook-scoped
     copy holding only the database URL. */}}
{{- define "anchord.secret" -}}
{{- $root := .root -}}
{{- $k := $root.Values.secrets.keys -}}
{{- $s := $root.Values.secrets -}}
apiVersion: v1
kind: Secret
metadata:
  {{- if .hook }}
  name: {{ include "anchord.fullname" $root }}-migrate
  {{- else }}
  name: {{ include "anchord.secretName" $root }}
  {{- end }}
  labels:
    {{- include "anchord.labels" $root | nindent 4 }}
  {{- if .hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
  {{- end }}
type: Opaque
data:
  {{ $k.databaseUrl }}: {{ $s.databaseUrl | b64enc | quote }}
  {{- if not .hook }}
  {{- if $root.Values.witness.separateDatabase }}
  {{ $k.witnessDatabaseUrl }}: {{ $s.witnessDatabaseUrl | b64enc | quote }}
  {{- end }}
  {{- if $root.Values.batcher.enabled }}
  {{ $k.sealerKey }}: {{ $s.sealerKey | b64enc | quote }}
  {{- end }}
  {{- if $root.Values.witness.enabled }}
  {{ $k.witnessKey }}: {{ $s.witnessKey | b64enc | quote }}
  {{- end }}
  {{- if and $root.Values.relay.enabled (include "anchord.relayNeedsSignerKey" $root) }}
  {{ $k.relaySignerKey }}: {{ $s.relaySignerKey | b64enc | quote }}
  {{- end }}
  {{- if and $root.Values.workflow.enabled $root.Values.workflow.keyEncryptionKey.enabled }}
  {{ $k.workflowKek }}: {{ required "secrets.workflowKek is required with workflow.keyEncryptionKey.enabled (64 hex digits: openssl rand -hex 32)" $s.workflowKek | b64enc | quote }}
  {{- end }}
  {{- end }}
{{- end -}}
