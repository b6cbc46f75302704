{{/*
Shared helpers. Every Kubernetes object of a workload is made here once; the per-service files
(identity.yaml, intake.yaml, ...) and all-in-one.yaml only call them with a context:

  (dict "root" $ "component" "grants")   one service, `--target=grants` (microservices mode)
  (dict "root" $ "component" "all")      the five services in one process (allInOne mode)

Object helpers emit nothing when their object is not wanted (an HPA that is off, a PDB that
could never allow a disruption), so the callers stay a list of includes.
*/}}

{{/* The five services, in the binary's order. */}}
{{- define "work4life.serviceNames" -}}
identity intake grants coaching notifications
{{- end }}

{{/* The gRPC port (W4L_LISTEN_ADDR) and the metrics port (W4L_METRICS_ADDR), fixed. */}}
{{- define "work4life.grpcPort" -}}50051{{- end }}
{{- define "work4life.metricsPort" -}}9464{{- end }}

{{- define "work4life.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: the release name, plus the chart name unless included. */}}
{{- define "work4life.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "work4life.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image tag: image.tag, or the chart's appVersion. */}}
{{- define "work4life.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "work4life.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "work4life.tag" .) }}
{{- end }}
{{- end }}

{{/* Name of one component's objects: <fullname> for all-in-one, <fullname>-<service> otherwise. */}}
{{- define "work4life.componentName" -}}
{{- $full := include "work4life.fullname" .root }}
{{- if eq .component "all" }}{{ $full }}{{ else }}{{ printf "%s-%s" $full .component | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{/* Labels that select a component's pods (context: root, component; component may be ""). */}}
{{- define "work4life.selectorLabels" -}}
app.kubernetes.io/name: {{ include "work4life.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* The standard app.kubernetes.io labels of every object. */}}
{{- define "work4life.labels" -}}
helm.sh/chart: {{ include "work4life.chart" .root }}
{{ include "work4life.selectorLabels" . }}
app.kubernetes.io/version: {{ include "work4life.tag" .root | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: work4life
{{- end }}

{{/* The values block of a component: allInOne, or services.<name>. */}}
{{- define "work4life.componentValues" -}}
{{- if eq .component "all" }}{{ toYaml .root.Values.allInOne }}{{ else }}{{ toYaml (index .root.Values.services .component) }}{{ end }}
{{- end }}

{{/* The services a component hosts, space-separated. */}}
{{- define "work4life.hosted" -}}
{{- if eq .component "all" }}{{ include "work4life.serviceNames" . }}{{ else }}{{ .component }}{{ end }}
{{- end }}

{{/* The peers a component calls (the services that list it in networkPolicy.allowedCallers);
none for all-in-one, whose peers are in the same process. */}}
{{- define "work4life.callees" -}}
{{- $callees := list }}
{{- if ne .component "all" }}
{{- range $service := splitList " " (include "work4life.serviceNames" .) }}
{{- if and (ne $service $.component) (has $.component (index $.root.Values.networkPolicy.allowedCallers $service | default list)) }}
{{- $callees = append $callees $service }}
{{- end }}
{{- end }}
{{- end }}
{{- join " " $callees }}
{{- end }}

{{/* The services allowed to call a component (gateway excluded; none for all-in-one). */}}
{{- define "work4life.callers" -}}
{{- $callers := list }}
{{- if ne .component "all" }}
{{- range (index .root.Values.networkPolicy.allowedCallers .component | default list) }}
{{- if and (ne . "gateway") (ne . $.component) }}{{ $callers = append $callers . }}{{ end }}
{{- end }}
{{- end }}
{{- join " " $callers }}
{{- end }}

{{/* "true" when the gateway may call this component. */}}
{{- define "work4life.gatewayAllowed" -}}
{{- $allowed := false }}
{{- range $service := splitList " " (include "work4life.hosted" .) }}
{{- if has "gateway" (index $.root.Values.networkPolicy.allowedCallers $service | default list) }}{{ $allowed = true }}{{ end }}
{{- end }}
{{- if $allowed }}true{{ end }}
{{- end }}

{{- define "work4life.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "work4life.fullname" .)) }}
{{- end }}

{{- define "work4life.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create }}{{ include "work4life.componentName" . }}{{ else }}{{ .root.Values.serviceAccount.name | default "default" }}{{ end }}
{{- end }}

{{/* Secret keys each service reads beyond the database and Redis URLs and the page-token key:
key -> required. Identity's key encryption key and intake's personal-data keys are required
(without them the binary would use its development keys). The platform's service account
(W4L_SERVICE_CLIENT_ID/SECRET) is required by identity, which keeps it in existence, and by
notifications, which calls intake as it. The providers' credentials are optional: without one,
its channel is off (SMTP) or its requests carry no token (SMS, WhatsApp). */}}
{{- define "work4life.serviceSecretKeys" -}}
identity:
  W4L_SIGNING_KEY_ENCRYPTION_KEY: true
  W4L_SERVICE_CLIENT_ID: true
  W4L_SERVICE_CLIENT_SECRET: true
intake:
  W4L_PERSONAL_DATA_KEYS: true
  W4L_PERSONAL_DATA_HASH_KEY: true
notifications:
  W4L_SERVICE_CLIENT_ID: true
  W4L_SERVICE_CLIENT_SECRET: true
  W4L_SMS_TOKEN: false
  W4L_WHATSAPP_TOKEN: false
  W4L_SMTP_URL: false
{{- end }}

{{/* The service-specific secret keys of a component's pods (context: root, component), as
key -> required: the union over the services it hosts, each key once (an all-in-one pod hosts
identity and notifications, which share the service account's keys), required when any of its
services requires it. */}}
{{- define "work4life.componentSecretKeys" -}}
{{- $all := include "work4life.serviceSecretKeys" . | fromYaml }}
{{- $keys := dict }}
{{- range $service := splitList " " (include "work4life.hosted" .) }}
{{- range $key, $required := index $all $service | default dict }}
{{- $_ := set $keys $key (or $required (index $keys $key | default false)) }}
{{- end }}
{{- end }}
{{- toYaml $keys }}
{{- end }}

{{/* "true" when a component hosts notifications (its pods send to the message providers). */}}
{{- define "work4life.hostsNotifications" -}}
{{- if has "notifications" (splitList " " (include "work4life.hosted" .)) }}true{{ end }}
{{- end }}

{{- define "work4life.secretRef" -}}
- name: {{ .key }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* Database URLs of the hosted services (context: root, component, secret). W4L_DATABASE_URL
is optional because every hosted service may have its own; the chart checks that each has one
when it creates the Secret. */}}
{{- define "work4life.databaseEnv" -}}
{{ include "work4life.secretRef" (dict "secret" .secret "key" "W4L_DATABASE_URL" "optional" true) }}
{{- range splitList " " (include "work4life.hosted" .) }}
{{ include "work4life.secretRef" (dict "secret" $.secret "key" (printf "W4L_%s_DATABASE_URL" (upper .)) "optional" true) }}
{{- end }}
{{- end }}

{{/* Checks that schema cannot express; included once, by configmap.yaml. */}}
{{- define "work4life.validate" -}}
{{- $v := .Values }}
{{- $s := $v.shutdown }}
{{- $needed := add $s.preStopSleepSeconds (div (add $s.delayMs 999) 1000) $s.graceSecs }}
{{- if le (int $s.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must be above preStopSleepSeconds + delayMs/1000 + graceSecs (%d), or calls are cut off" (int $s.terminationGracePeriodSeconds) (int $needed)) }}
{{- end }}
{{- if eq $v.deploymentMode "microservices" }}
{{- range splitList " " (include "work4life.serviceNames" .) }}
{{- if and (ne . "identity") (not (has . $v.networkPolicy.allowedCallers.identity)) }}
{{- fail (printf "networkPolicy.allowedCallers.identity must list %s: every service fetches identity's key set (GetKeySet) to verify tokens" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- if not $v.secrets.existingSecret }}
{{- $sec := $v.secrets }}
{{- $_ := required "secrets.pageTokenKey is required (openssl rand -base64 32), or set secrets.existingSecret" $sec.pageTokenKey }}
{{- $_ = required "secrets.signingKeyEncryptionKey is required (openssl rand -base64 32; never change it afterwards), or set secrets.existingSecret" $sec.signingKeyEncryptionKey }}
{{- /* intake runs in both modes (its own Deployment, or inside the all-in-one one). */}}
{{- $_ = required "secrets.personalDataKeys is required (intake; 2026a:$(openssl rand -base64 32), the first key encrypts), or set secrets.existingSecret" $sec.personalDataKeys }}
{{- $_ = required "secrets.personalDataHashKey is required (intake; openssl rand -base64 32; never change it afterwards), or set secrets.existingSecret" $sec.personalDataHashKey }}
{{- $_ = required "secrets.redisUrl is required (redis://[:password@]host:6379/0), or set secrets.existingSecret" $sec.redisUrl }}
{{- /* identity and notifications run in both modes: both need the service account. */}}
{{- $_ = required "secrets.serviceClientId is required (identity, notifications: the platform's service account, a UUID: uuidgen), or set secrets.existingSecret" $sec.serviceClientId }}
{{- $_ = required "secrets.serviceClientSecret is required (identity, notifications: the service account's secret, at least 32 characters: openssl rand -base64 48), or set secrets.existingSecret" $sec.serviceClientSecret }}
{{- range splitList " " (include "work4life.serviceNames" .) }}
{{- if not (or $sec.databaseUrl (index $sec.databaseUrls .)) }}
{{- fail (printf "secrets.databaseUrl (or secrets.databaseUrls.%s) is required, or set secrets.existingSecret" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod and container security: non-root (the image's UID 65532), read-only root filesystem, no
privilege escalation, every capability dropped, the runtime's default seccomp profile. */}}
{{- define "work4life.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "work4life.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Scheduling shared by Deployments and Jobs. */}}
{{- define "work4life.scheduling" -}}
{{- $root := .root }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A native gRPC probe on grpc.health.v1 for the component's health entry. */}}
{{- define "work4life.probe" -}}
grpc:
  port: {{ include "work4life.grpcPort" . }}
  {{- /* Liveness asks for `process` (the process answers); readiness and startup ask for the
         component, which is SERVING only while its PostgreSQL and Redis answer. */}}
  service: {{ if .liveness }}process{{ else if eq .component "all" }}""{{ else }}{{ .component }}{{ end }}
{{ toYaml .settings }}
{{- end }}

{{/* ServiceAccount of a component: its token is never mounted. */}}
{{- define "work4life.serviceAccount" -}}
{{- if .root.Values.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "work4life.serviceAccountName" . }}
  labels:
    {{- include "work4life.labels" . | nindent 4 }}
  {{- with .root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end }}

{{/* Deployment of a component: `work4life --target=<component> serve`. */}}
{{- define "work4life.deployment" -}}
{{- $root := .root }}
{{- $v := include "work4life.componentValues" . | fromYaml }}
{{- $secret := include "work4life.secretName" $root }}
{{- $target := .component }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "work4life.componentName" . }}
  labels:
    {{- include "work4life.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    {{- toYaml $root.Values.updateStrategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "work4life.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "work4life.labels" . | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # Configuration changes roll the pods.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if not $root.Values.secrets.existingSecret }}
        checksum/secrets: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        {{- with merge (dict) ($v.podAnnotations | default dict) $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "work4life.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $root.Values.shutdown.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "work4life.podSecurityContext" . | nindent 8 }}
      {{- with include "work4life.scheduling" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: {{ $root.Values.topologySpread.topologyKey }}
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "work4life.selectorLabels" . | nindent 14 }}
          matchLabelKeys: ["pod-template-hash"]
      {{- end }}
      containers:
        - name: work4life
          image: {{ include "work4life.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["--target={{ $target }}", "serve"]
          ports:
            - name: grpc
              containerPort: {{ include "work4life.grpcPort" . }}
              protocol: TCP
            {{- if $root.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ include "work4life.metricsPort" . }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "work4life.fullname" $root }}-config
          env:
            {{- include "work4life.databaseEnv" (dict "root" $root "component" .component "secret" $secret) | nindent 12 }}
            {{- include "work4life.secretRef" (dict "secret" $secret "key" "W4L_REDIS_URL") | nindent 12 }}
            {{- include "work4life.secretRef" (dict "secret" $secret "key" "W4L_PAGE_TOKEN_KEY") | nindent 12 }}
            {{- range $key, $required := include "work4life.componentSecretKeys" . | fromYaml }}
            {{- include "work4life.secretRef" (dict "secret" $secret "key" $key "optional" (not $required)) | nindent 12 }}
            {{- end }}
            {{- range $peer := splitList " " (include "work4life.callees" .) | compact }}
            - name: W4L_{{ upper $peer }}_URL
              value: "http://{{ include "work4life.componentName" (dict "root" $root "component" $peer) }}:{{ include "work4life.grpcPort" $ }}"
            {{- end }}
            {{- if $root.Values.otel.kubernetesAttributes }}
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: OTEL_RESOURCE_ATTRIBUTES
              value: "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),k8s.deployment.name={{ include "work4life.componentName" . }}"
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            {{- include "work4life.probe" (dict "component" .component "settings" $root.Values.probes.startup) | nindent 12 }}
          readinessProbe:
            {{- include "work4life.probe" (dict "component" .component "settings" $root.Values.probes.readiness) | nindent 12 }}
          livenessProbe:
            {{- include "work4life.probe" (dict "component" .component "settings" $root.Values.probes.liveness "liveness" true) | nindent 12 }}
          {{- if gt (int $root.Values.shutdown.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $root.Values.shutdown.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "work4life.containerSecurityContext" . | nindent 12 }}
{{- end }}

{{/* Service of a component: gRPC on 50051 (`grpc`), metrics on 9464 (`metrics`). */}}
{{- define "work4life.service" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "work4life.componentName" . }}
  labels:
    {{- include "work4life.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "work4life.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ include "work4life.grpcPort" . }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    {{- if .root.Values.metrics.enabled }}
    - name: metrics
      port: {{ include "work4life.metricsPort" . }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end }}

{{/* HorizontalPodAutoscaler of a component, when its autoscaling is enabled. */}}
{{- define "work4life.hpa" -}}
{{- $a := (include "work4life.componentValues" . | fromYaml).autoscaling }}
{{- if $a.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "work4life.componentName" . }}
  labels:
    {{- include "work4life.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "work4life.componentName" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* PodDisruptionBudget of a component, only when it can allow a disruption: more than one
replica (or an HPA whose minReplicas is above 1). With one replica, maxUnavailable 1 would let
a drain take the only pod, and minAvailable 1 would block every drain. */}}
{{- define "work4life.pdb" -}}
{{- $v := include "work4life.componentValues" . | fromYaml }}
{{- $floor := ternary $v.autoscaling.minReplicas $v.replicas $v.autoscaling.enabled }}
{{- if and $v.podDisruptionBudget.enabled (gt (int $floor) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "work4life.componentName" . }}
  labels:
    {{- include "work4life.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "work4life.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/* Egress every work4life pod needs: DNS, PostgreSQL and the OTLP collector (context: root). */}}
{{- define "work4life.baseEgress" -}}
{{- $np := .Values.networkPolicy }}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with $np.dns }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    {{- range $np.postgresql.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.postgresql.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if .Values.otel.endpoint }}
- ports:
    {{- range $np.otlp.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.otlp.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* NetworkPolicy of a component: ingress from its callers (gateway, peer services) on gRPC and
from the metrics scrapers; egress to DNS, PostgreSQL, Redis, OTLP, the peers it calls and, when
it hosts notifications, the message providers (networkPolicy.providers). The release-wide
default deny (networkpolicy.yaml) refuses everything else. */}}
{{- define "work4life.networkPolicy" -}}
{{- $root := .root }}
{{- $np := $root.Values.networkPolicy }}
{{- if $np.enabled }}
{{- $callers := splitList " " (include "work4life.callers" .) | compact }}
{{- $callees := splitList " " (include "work4life.callees" .) | compact }}
{{- $gateway := include "work4life.gatewayAllowed" . }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "work4life.componentName" . }}
  labels:
    {{- include "work4life.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "work4life.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  {{- if not (or $gateway $callers (and $root.Values.metrics.enabled $np.metricsFrom) $np.extraIngress) }}
  ingress: []
  {{- else }}
  ingress:
    {{- if or $gateway $callers }}
    - from:
        {{- if $gateway }}
        - podSelector:
            {{- toYaml $np.gateway.podSelector | nindent 12 }}
          {{- if not (kindIs "invalid" $np.gateway.namespaceSelector) }}
          namespaceSelector:
            {{- toYaml $np.gateway.namespaceSelector | nindent 12 }}
          {{- end }}
        {{- end }}
        {{- range $callers }}
        - podSelector:
            matchLabels:
              {{- include "work4life.selectorLabels" (dict "root" $root "component" .) | nindent 14 }}
        {{- end }}
      ports:
        - port: {{ include "work4life.grpcPort" . }}
          protocol: TCP
    {{- end }}
    {{- if and $root.Values.metrics.enabled $np.metricsFrom }}
    - from:
        {{- toYaml $np.metricsFrom | nindent 8 }}
      ports:
        - port: {{ include "work4life.metricsPort" . }}
          protocol: TCP
    {{- end }}
    {{- with $np.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  egress:
    {{- include "work4life.baseEgress" $root | trim | nindent 4 }}
    - ports:
        {{- range $np.redis.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $np.redis.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if include "work4life.hostsNotifications" . }}
    - ports:
        {{- range $np.providers.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $np.providers.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- if $callees }}
    - to:
        {{- range $callees }}
        - podSelector:
            matchLabels:
              {{- include "work4life.selectorLabels" (dict "root" $root "component" .) | nindent 14 }}
        {{- end }}
      ports:
        - port: {{ include "work4life.grpcPort" . }}
          protocol: TCP
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Hook annotations of the objects a migration Job needs, created just before it. */}}
{{- define "work4life.migrateHookSupport" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* A migration Job: `work4life --target=<target> migrate` (context: root, target). It runs
before the release's ConfigMap and Secret exist (pre-install), so its settings are inline and
its database URLs come from the hook Secret (or the existing Secret). */}}
{{- define "work4life.migrateJob" -}}
{{- $root := .root }}
{{- $m := $root.Values.migrations }}
{{- $ctx := dict "root" $root "component" "migrate" }}
{{- $secret := $root.Values.secrets.existingSecret | default (printf "%s-migrate" (include "work4life.fullname" $root)) }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "work4life.fullname" $root }}-migrate{{ if ne .target "all" }}-{{ .target }}{{ end }}
  labels:
    {{- include "work4life.labels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    # Kept after success for its logs (ttlSecondsAfterFinished removes it), replaced by the next run.
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: {{ $m.backoffLimit }}
  activeDeadlineSeconds: {{ $m.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ $m.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "work4life.labels" $ctx | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $root.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "work4life.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "work4life.podSecurityContext" . | nindent 8 }}
      {{- with include "work4life.scheduling" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: migrate
          image: {{ include "work4life.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["--target={{ .target }}", "migrate"]
          env:
            {{- include "work4life.databaseEnv" (dict "root" $root "component" .target "secret" $secret) | nindent 12 }}
            - name: W4L_LOG
              value: {{ $root.Values.config.log | quote }}
            - name: W4L_LOG_FORMAT
              value: {{ $root.Values.config.logFormat | quote }}
            {{- with $root.Values.otel.endpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ . | quote }}
            {{- end }}
          resources:
            {{- toYaml $m.resources | nindent 12 }}
          securityContext:
            {{- include "work4life.containerSecurityContext" . | nindent 12 }}
{{- end }}
