import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorBanner } from '../components/error-banner';
import { CheckField, FieldSet, SelectField, TextAreaField, TextField } from '../components/fields';
import { JsonEditor } from '../components/json-editor';
import { KeyField } from '../components/key-field';
import { checkInitialTwin } from '../components/twin';
import { href, navigate } from '../router';
import { useSession } from '../session';
import { CertificateInput } from './certificate-input';
import type { Attestation, CertificateInfo, EnrollmentKind, EnrollmentRecord } from './enrollment-kind';

type AttestationType = Attestation['type'];
type Reprovision = 'migrate' | 'reset' | 'never';
type X509Mode = 'certificates' | 'caReferences';

interface FormState {
  id: string;
  deviceId: string;
  type: AttestationType;
  primaryKey: string;
  secondaryKey: string;
  x509Mode: X509Mode;
  primaryPem: string;
  secondaryPem: string;
  caPrimary: string;
  caSecondary: string;
  endorsementKey: string;
  storageRootKey: string;
  enabled: boolean;
  allocationPolicy: string;
  webhookUrl: string;
  apiVersion: string;
  hubs: string[];
  reprovision: Reprovision;
  iotEdge: boolean;
  twin: string;
}

const EMPTY: FormState = {
  id: '',
  deviceId: '',
  type: 'symmetricKey',
  primaryKey: '',
  secondaryKey: '',
  x509Mode: 'certificates',
  primaryPem: '',
  secondaryPem: '',
  caPrimary: '',
  caSecondary: '',
  endorsementKey: '',
  storageRootKey: '',
  enabled: true,
  allocationPolicy: '',
  webhookUrl: '',
  apiVersion: '2019-03-31',
  hubs: [],
  reprovision: 'migrate',
  iotEdge: false,
  twin: '',
};

function reprovisionOf(policy: EnrollmentRecord['reprovisionPolicy']): Reprovision {
  if (!policy || policy.updateHubAssignment) return policy && !policy.migrateDeviceData ? 'reset' : 'migrate';
  return 'never';
}

function toForm(kind: EnrollmentKind, record: EnrollmentRecord): FormState {
  const { attestation } = record;
  const x509 = attestation.x509;
  const certificates = kind.kind === 'individual' ? x509?.clientCertificates : x509?.signingCertificates;
  return {
    ...EMPTY,
    id: String(record[kind.idField] ?? ''),
    deviceId: record.deviceId ?? '',
    type: attestation.type,
    primaryKey: attestation.symmetricKey?.primaryKey ?? '',
    secondaryKey: attestation.symmetricKey?.secondaryKey ?? '',
    x509Mode: x509?.caReferences ? 'caReferences' : 'certificates',
    primaryPem: certificates?.primary?.certificate ?? '',
    secondaryPem: certificates?.secondary?.certificate ?? '',
    caPrimary: x509?.caReferences?.primary ?? '',
    caSecondary: x509?.caReferences?.secondary ?? '',
    endorsementKey: attestation.tpm?.endorsementKey ?? '',
    storageRootKey: attestation.tpm?.storageRootKey ?? '',
    enabled: record.provisioningStatus !== 'disabled',
    allocationPolicy: record.allocationPolicy ?? '',
    webhookUrl: record.customAllocationDefinition?.webhookUrl ?? '',
    apiVersion: record.customAllocationDefinition?.apiVersion ?? EMPTY.apiVersion,
    hubs: record.iotHubs ?? (record.iotHubHostName ? [record.iotHubHostName] : []),
    reprovision: reprovisionOf(record.reprovisionPolicy),
    iotEdge: record.capabilities?.iotEdge ?? false,
    twin: record.initialTwin ? JSON.stringify(record.initialTwin, null, 2) : '',
  };
}

/** A stored certificate is sent back as its `info` (the server keeps it, docs/service-rest.md §4); a new one as PEM. */
function slot(pem: string, stored: CertificateInfo | undefined) {
  if (pem.trim()) return { certificate: pem.trim() };
  return stored ? { info: stored } : undefined;
}

function attestationOf(kind: EnrollmentKind, form: FormState, base: EnrollmentRecord | undefined): Attestation {
  switch (form.type) {
    case 'symmetricKey':
      return { type: 'symmetricKey', symmetricKey: { ...(form.primaryKey ? { primaryKey: form.primaryKey } : {}), ...(form.secondaryKey ? { secondaryKey: form.secondaryKey } : {}) } };
    case 'tpm':
      return { type: 'tpm', tpm: { endorsementKey: form.endorsementKey.trim(), ...(form.storageRootKey.trim() ? { storageRootKey: form.storageRootKey.trim() } : {}) } };
    case 'x509': {
      if (kind.kind === 'group' && form.x509Mode === 'caReferences') {
        return { type: 'x509', x509: { caReferences: { primary: form.caPrimary, ...(form.caSecondary ? { secondary: form.caSecondary } : {}) } } };
      }
      const stored = kind.kind === 'individual' ? base?.attestation.x509?.clientCertificates : base?.attestation.x509?.signingCertificates;
      const primary = slot(form.primaryPem, stored?.primary?.info);
      const secondary = slot(form.secondaryPem, stored?.secondary?.info);
      const pair = { ...(primary ? { primary } : {}), ...(secondary ? { secondary } : {}) };
      return { type: 'x509', x509: kind.kind === 'individual' ? { clientCertificates: pair } : { signingCertificates: pair } };
    }
  }
}

/** The body of the PUT: what was read (fields the console does not edit are kept), with the form's fields. */
function toRecord(kind: EnrollmentKind, form: FormState, base: EnrollmentRecord | undefined, twin: Record<string, unknown> | undefined): EnrollmentRecord {
  const record: EnrollmentRecord = { ...(base ?? {}), attestation: attestationOf(kind, form, base) };
  for (const readOnly of ['registrationState', 'createdDateTimeUtc', 'lastUpdatedDateTimeUtc', 'etag', 'iotHubHostName', 'customAllocationDefinition', 'initialTwin', 'deviceId']) delete record[readOnly];
  record[kind.idField] = form.id.trim();
  if (kind.kind === 'individual' && form.deviceId.trim()) record.deviceId = form.deviceId.trim();
  record.provisioningStatus = form.enabled ? 'enabled' : 'disabled';
  if (form.allocationPolicy) record.allocationPolicy = form.allocationPolicy;
  else delete record.allocationPolicy;
  if (form.allocationPolicy === 'custom') record.customAllocationDefinition = { webhookUrl: form.webhookUrl.trim(), apiVersion: form.apiVersion.trim() };
  record.iotHubs = form.hubs;
  record.reprovisionPolicy = { updateHubAssignment: form.reprovision !== 'never', migrateDeviceData: form.reprovision === 'migrate' };
  record.capabilities = { iotEdge: form.iotEdge };
  if (twin) record.initialTwin = twin;
  return record;
}

/** Create (`id` undefined) or edit one enrollment or group: PUT with If-Match, DELETE with If-Match. */
export function EnrollmentForm({ kind, id }: { kind: EnrollmentKind; id?: string }) {
  const api = useSession();
  const [base, setBase] = useState<EnrollmentRecord>();
  const [form, setForm] = useState<FormState>(EMPTY);
  const [error, setError] = useState<unknown>();
  const [conflict, setConflict] = useState(false);
  const [saved, setSaved] = useState('');
  const [busy, setBusy] = useState(false);
  const [loading, setLoading] = useState(id !== undefined);
  const [confirming, setConfirming] = useState(false);
  /** The CA certificates a group may reference, as choices (one list for the primary and the secondary). */
  const [caOptions, setCaOptions] = useState<{ value: string; label: string }[]>([]);
  const path = (recordId: string) => `${kind.apiPath}/${encodeURIComponent(recordId)}`;
  const set = <K extends keyof FormState>(field: K) => (value: FormState[K]) => setForm((current) => ({ ...current, [field]: value }));
  const twinCheck = useMemo(() => checkInitialTwin(form.twin), [form.twin]);

  const load = async (recordId: string) => {
    setLoading(true);
    setError(undefined);
    setConflict(false);
    try {
      const { body } = await api.service<EnrollmentRecord>('GET', path(recordId));
      // Reads leave symmetric keys out; the attestation mechanism call returns them (docs/service-rest.md §1).
      if (body.attestation.type === 'symmetricKey') {
        const { body: mechanism } = await api.service<Attestation>('POST', `${path(recordId)}/attestationmechanism`);
        body.attestation = { ...body.attestation, symmetricKey: mechanism.symmetricKey ?? {} };
      }
      setBase(body);
      setForm(toForm(kind, body));
    } catch (caught) {
      setError(caught);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    if (id !== undefined) void load(id);
    else {
      setBase(undefined);
      setForm(EMPTY);
    }
    // The CA certificates a group may reference.
    if (kind.kind === 'group') {
      api.service<{ value: { name: string; properties: { isVerified: boolean } }[] }>('GET', '/certificates').then(
        ({ body }) => setCaOptions(body.value.map((ca) => ({ value: ca.name, label: ca.properties.isVerified ? ca.name : `${ca.name} (not verified yet: devices are refused)` }))),
        () => setCaOptions([]),
      );
    }
  }, [id, kind]);

  const save = async (event: Event) => {
    event.preventDefault();
    setSaved('');
    setError(undefined);
    setConflict(false);
    if (twinCheck.problem) {
      setError(new Error(`The initial twin is refused: ${twinCheck.problem}`));
      return;
    }
    const recordId = form.id.trim();
    setBusy(true);
    try {
      const body = toRecord(kind, form, base, twinCheck.twin);
      if (id === undefined) {
        // PUT is an upsert; a bulk "create" of one item is create-only (409001 when the id exists,
        // docs/service-rest.md §6), so a new enrollment never overwrites someone else's.
        const { body: result } = await api.service<{ errors: { errorCode: number; errorStatus: string }[] }>('POST', kind.apiPath, { body: { mode: 'create', [kind.bulkField]: [body] } });
        const failure = result.errors[0];
        if (failure) throw new ApiError(Math.floor(failure.errorCode / 1000), failure.errorCode, failure.errorStatus);
        setSaved(`Saved ${kind.noun} ${recordId}.`);
        navigate(`${kind.route}/${encodeURIComponent(recordId)}`);
        return;
      }
      const { body: written } = await api.service<EnrollmentRecord>('PUT', path(recordId), { body, headers: base?.etag ? { 'if-match': base.etag } : {} });
      setBase(written);
      setForm(toForm(kind, written));
      setSaved(`Saved ${kind.noun} ${recordId}.`);
    } catch (caught) {
      setError(caught);
      setConflict(id !== undefined && caught instanceof ApiError && caught.isConflict);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setConfirming(false);
    setError(undefined);
    try {
      await api.service('DELETE', path(form.id), { headers: base?.etag ? { 'if-match': base.etag } : {} });
      navigate(kind.route);
    } catch (caught) {
      setError(caught);
      setConflict(caught instanceof ApiError && caught.isConflict);
    }
  };

  if (loading) return <p class="loading">Loading {kind.noun}…</p>;
  const hubs = api.session.instance.linkedHubs;
  const stored = kind.kind === 'individual' ? base?.attestation.x509?.clientCertificates : base?.attestation.x509?.signingCertificates;

  return (
    <section class="enrollment-form">
      <p>
        <a href={href(kind.route)}>← All {kind.kind === 'individual' ? 'enrollments' : 'groups'}</a>
      </p>
      <h1>{id === undefined ? `New ${kind.noun}` : `${kind.kind === 'individual' ? 'Enrollment' : 'Group'} ${id}`}</h1>
      {conflict ? (
        <div class="banner error" role="alert">
          <span>
            This {kind.noun} changed since you opened it (someone else saved it): your changes were not saved. Reload to see the current version.
            {error instanceof ApiError ? ` ${error.describe()}` : ''}
          </span>
          <button type="button" class="secondary" onClick={() => void load(form.id)}>
            Reload
          </button>
        </div>
      ) : (
        <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
      )}
      {saved ? (
        <p class="banner ok" role="status">
          {saved}
        </p>
      ) : null}
      {id !== undefined && base ? (
        <p class="toolbar">
          {kind.kind === 'individual' ? (
            <a href={href(`/registrations/${encodeURIComponent(id)}`)}>Registration record and trace</a>
          ) : (
            <a href={href('/registrations', { group: id })}>Registrations of this group</a>
          )}
          <a href={href('/fleet', { [kind.kind === 'individual' ? 'enrollment' : 'group']: id })}>Run as in-browser devices</a>
        </p>
      ) : null}
      <form class="card" onSubmit={(event) => void save(event)}>
        <TextField label={kind.idLabel} value={form.id} onInput={set('id')} required disabled={id !== undefined} hint="Letters, digits and - . _ : (at most 128), as the devices will register." />
        {kind.kind === 'individual' ? <TextField label="Device ID (optional)" value={form.deviceId} onInput={set('deviceId')} hint="The hub device id; the registration id when empty." /> : null}

        <SelectField<AttestationType>
          label="Attestation"
          value={form.type}
          onChange={set('type')}
          options={[
            { value: 'symmetricKey', label: 'Symmetric key' },
            { value: 'x509', label: 'X.509 certificate' },
            ...(kind.kind === 'individual' ? [{ value: 'tpm' as const, label: 'TPM endorsement key' }] : []),
          ]}
        />
        {form.type === 'symmetricKey' ? (
          <FieldSet legend="Symmetric keys">
            {kind.kind === 'group' ? <p class="hint">Devices sign with a key derived from the group key and their registration id (HMAC-SHA256).</p> : null}
            <KeyField label="Primary key" value={form.primaryKey} onInput={set('primaryKey')} />
            <KeyField label="Secondary key" value={form.secondaryKey} onInput={set('secondaryKey')} />
          </FieldSet>
        ) : null}
        {form.type === 'x509' ? (
          <>
            {kind.kind === 'group' ? (
              <SelectField<X509Mode>
                label="Devices are trusted through"
                value={form.x509Mode}
                onChange={set('x509Mode')}
                options={[
                  { value: 'certificates', label: 'A signing (intermediate or root) certificate' },
                  { value: 'caReferences', label: 'A verified CA certificate of this instance' },
                ]}
              />
            ) : null}
            {kind.kind === 'group' && form.x509Mode === 'caReferences' ? (
              <>
                <SelectField label="Primary CA certificate" value={form.caPrimary} onChange={set('caPrimary')} options={[{ value: '', label: '(choose)' }, ...caOptions]} hint="Uploaded and verified on the Certificates page." />
                <SelectField label="Secondary CA certificate" value={form.caSecondary} onChange={set('caSecondary')} options={[{ value: '', label: '(none)' }, ...caOptions]} />
              </>
            ) : (
              <>
                <CertificateInput label="Primary certificate" pem={form.primaryPem} onChange={set('primaryPem')} {...(stored?.primary?.info ? { stored: stored.primary.info } : {})} />
                <CertificateInput label="Secondary certificate (optional)" pem={form.secondaryPem} onChange={set('secondaryPem')} {...(stored?.secondary?.info ? { stored: stored.secondary.info } : {})} />
              </>
            )}
          </>
        ) : null}
        {form.type === 'tpm' ? (
          <FieldSet legend="TPM">
            <TextAreaField label="Endorsement key (base64 TPM2B_PUBLIC)" value={form.endorsementKey} onInput={set('endorsementKey')} hint="As tpm2_readpublic writes it, size prefix included (a real EK starts AToAAQALAAMAsgAg…)." />
            <TextAreaField label="Storage root key (optional)" value={form.storageRootKey} onInput={set('storageRootKey')} />
          </FieldSet>
        ) : null}

        <CheckField label="Enabled (devices may register)" checked={form.enabled} onChange={set('enabled')} />
        <CheckField label="IoT Edge device" checked={form.iotEdge} onChange={set('iotEdge')} />

        <SelectField
          label="Allocation policy"
          value={form.allocationPolicy}
          onChange={set('allocationPolicy')}
          options={[
            { value: '', label: `Instance default (${api.session.instance.allocationPolicy})` },
            { value: 'hashed', label: 'Evenly weighted distribution (hashed)' },
            { value: 'geoLatency', label: 'Lowest latency' },
            { value: 'static', label: 'Static (exactly one hub)' },
            { value: 'custom', label: 'Custom (webhook)' },
          ]}
        />
        {form.allocationPolicy === 'custom' ? (
          <>
            <TextField label="Webhook URL" value={form.webhookUrl} onInput={set('webhookUrl')} required hint="https://, or http:// to a loopback address." />
            <TextField label="Webhook API version" value={form.apiVersion} onInput={set('apiVersion')} required />
          </>
        ) : null}
        <FieldSet legend="IoT hubs this enrollment may use">
          <p class="hint">None chosen: every linked hub that applies the allocation policy.</p>
          {hubs.map((hub) => (
            <CheckField
              key={hub.hostName}
              label={`${hub.name} (${hub.hostName}), weight ${hub.allocationWeight ?? 1}${hub.location ? `, ${hub.location}` : ''}`}
              checked={form.hubs.some((chosen) => chosen.toLowerCase() === hub.hostName.toLowerCase() || chosen.toLowerCase() === hub.name.toLowerCase())}
              onChange={(checked) =>
                setForm((current) => ({
                  ...current,
                  hubs: checked ? [...current.hubs, hub.hostName] : current.hubs.filter((chosen) => chosen.toLowerCase() !== hub.hostName.toLowerCase() && chosen.toLowerCase() !== hub.name.toLowerCase()),
                }))
              }
            />
          ))}
        </FieldSet>
        <SelectField<Reprovision>
          label="When a device registers again"
          value={form.reprovision}
          onChange={set('reprovision')}
          options={[
            { value: 'migrate', label: 'Re-provision and migrate its data' },
            { value: 'reset', label: 'Re-provision and reset to the initial config' },
            { value: 'never', label: 'Never re-provision (keep its hub)' },
          ]}
        />
        <JsonEditor
          label="Initial twin (JSON)"
          value={form.twin}
          onInput={set('twin')}
          {...(twinCheck.problem ? { problem: twinCheck.problem } : {})}
          hint='{"tags": {…}, "properties": {"desired": {…}}}; checked as the server checks it (depth, sizes, property names).'
        />
        <div class="toolbar">
          <button type="submit" disabled={busy || twinCheck.problem !== undefined}>
            {busy ? 'Saving…' : id === undefined ? `Create ${kind.noun}` : 'Save'}
          </button>
          {id !== undefined ? (
            <button type="button" class="danger" onClick={() => setConfirming(true)}>
              Delete
            </button>
          ) : null}
        </div>
      </form>
      <ConfirmDialog open={confirming} title={`Delete ${kind.noun} ${form.id}?`} confirmLabel="Delete" danger onConfirm={() => void remove()} onCancel={() => setConfirming(false)}>
        <p>Devices will no longer be able to register with it. Their registration records stay until you delete them.</p>
      </ConfirmDialog>
    </section>
  );
}

