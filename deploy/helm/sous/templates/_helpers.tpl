{{/* Names, labels and the environment every Sous container shares. */}}

{{- define "sous.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sous.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sous.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sous.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", for a dict with keys root and component. */}}
{{- define "sous.componentName" -}}
{{- printf "%s-%s" (include "sous.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sous.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sous.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sous.labels" -}}
{{ include "sous.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: sous
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sous.secretName" -}}
{{- default (printf "%s-secrets" (include "sous.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "sous.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "sous.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end -}}
{{- end -}}

{{/* Whether Strimzi makes the services' Kafka users (and their passwords' Secrets). */}}
{{- define "sous.strimziUsers" -}}
{{- if and .Values.strimzi.enabled .Values.strimzi.users }}true{{ end -}}
{{- end -}}

{{/* Broker settings of one Kafka principal: dict with root, username, passwordKey. */}}
{{- define "sous.kafkaEnv" -}}
{{- $v := .root.Values -}}
- name: SOUS_KAFKA_BOOTSTRAP
  value: {{ $v.kafka.bootstrap | quote }}
- name: SOUS_KAFKA_TOPIC_PREFIX
  value: {{ $v.kafka.topicPrefix | quote }}
- name: SOUS_KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if include "sous.sasl" .root }}
- name: SOUS_KAFKA_SASL_MECHANISM
  value: {{ required "kafka.saslMechanism is required with a SASL_* protocol" $v.kafka.saslMechanism | quote }}
- name: SOUS_KAFKA_SASL_USERNAME
  value: {{ .username | quote }}
- name: SOUS_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if include "sous.strimziUsers" .root }}
      name: {{ .username }}
      key: password
      {{- else }}
      name: {{ include "sous.secretName" .root }}
      key: {{ .passwordKey }}
      {{- end }}
{{- end }}
{{- if $v.kafka.caSecret }}
- name: SOUS_KAFKA_SSL_CAFILE
  value: /etc/sous/kafka-ca/ca.crt
{{- end }}
{{- end -}}

{{- define "sous.kafkaCaVolume" -}}
{{- if .Values.kafka.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "sous.kafkaCaMount" -}}
{{- if .Values.kafka.caSecret }}
- name: kafka-ca
  mountPath: /etc/sous/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* The consumer group and the topic whose lag scales a service (KEDA). */}}
{{- define "sous.lagSource" -}}
{{- $sources := dict "executor" "sous.commands.step" "test-runner" "sous.commands.test" -}}
{{- get $sources .component -}}
{{- end -}}
