{{- define "rcm.labels" -}}
app.kubernetes.io/name: rcm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "rcm.env" -}}
{{- range $name, $value := .root.Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
- name: RCM_KEK_DIRECTORY
  value: /var/run/rcm/keks
{{- with .env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- /* Called with (dict "root" $ "container" NAME "args" LIST "extra" DICT), optionally also "env" LIST,
"volumes" LIST and "volumeMounts" LIST for what one workload alone needs, and "secrets" LIST: the keys of
.Values.secrets the pod loads (default: app only; the API adds control, the migration Job uses admin). */ -}}
{{- define "rcm.podSpec" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  fsGroup: 10001
volumes:
  - name: keks
    secret:
      secretName: {{ .root.Values.kekSecret }}
      defaultMode: 0400
  {{- with .volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
containers:
  - name: {{ .container }}
    image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
    imagePullPolicy: {{ .root.Values.image.pullPolicy }}
    command: ["rcm"]
    args: {{ .args | toJson }}
    envFrom:
      {{- range (.secrets | default (list "app")) }}
      - secretRef:
          name: {{ index $.root.Values.secrets . }}
      {{- end }}
    env:
      {{- include "rcm.env" . | nindent 6 }}
    volumeMounts:
      - name: keks
        mountPath: /var/run/rcm/keks
        readOnly: true
      {{- with .volumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: ["ALL"]}
    {{- with .extra }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
