{{/* Names and labels shared by every object of the chart. */}}

{{- define "polity.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "polity.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "processors-worker"). */}}
{{- define "polity.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "polity.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "polity.secretName" -}}
{{- default (printf "%s-credentials" (include "polity.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The environment of every Polity container: the ConfigMap, the Secret, then extraEnv. */}}
{{- define "polity.envFrom" -}}
- configMapRef:
    name: {{ include "polity.fullname" . }}-config
- secretRef:
    name: {{ include "polity.secretName" . }}
{{- end -}}

{{- define "polity.extraEnv" -}}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every Deployment: pass (dict "root" $ "scheduling" $config). */}}
{{- define "polity.podSpec" -}}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .scheduling.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .scheduling.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .scheduling.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Writable folders under a read-only root: tsx's compile cache (/tmp) and /app/.polity. */}}
{{- define "polity.volumes" -}}
- name: tmp
  emptyDir: {}
- name: polity-home
  emptyDir: {}
{{- if .Values.topology }}
- name: topology
  configMap:
    name: {{ include "polity.fullname" . }}-topology
{{- end }}
{{- end -}}

{{- define "polity.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: polity-home
  mountPath: /app/.polity
{{- if .Values.topology }}
- name: topology
  mountPath: /etc/polity
  readOnly: true
{{- end }}
{{- end -}}

{{/* Liveness on /health, readiness on /ready, a start-up probe on /health: pass (dict "root" $ "port" "probes"). */}}
{{- define "polity.probes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet:
    path: /health
    port: {{ .port }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /health
    port: {{ .port }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /ready
    port: {{ .port }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end -}}
