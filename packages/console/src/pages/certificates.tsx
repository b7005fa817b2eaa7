import { useEffect, useState } from 'preact/hooks';
import { ConfirmDialog } from '../components/confirm-dialog';
import { CopyButton } from '../components/copy-button';
import { ErrorBanner } from '../components/error-banner';
import { TextField } from '../components/fields';
import { useAction } from '../components/use-action';
import { useSession } from '../session';
import { CertificateInput } from './certificate-input';

/** A CA certificate as `/certificates` answers (docs/service-rest.md §18). */
interface CaCertificate {
  name: string;
  etag?: string;
  properties: { subject: string; thumbprint: string; expiry: string; isVerified: boolean; verificationCode?: string; created?: string; updated?: string };
}

/**
 * CA certificates and their proof of possession: upload a CA, generate a verification code, upload
 * a certificate whose CN is that code signed by the CA, and the CA is verified (groups may then
 * reference it in `caReferences`).
 */
export function CertificatesPage() {
  const api = useSession();
  const [list, setList] = useState<CaCertificate[]>();
  const { busy, error, setError, run, submit } = useAction();
  const [name, setName] = useState('');
  const [pem, setPem] = useState('');
  const [deleting, setDeleting] = useState<CaCertificate>();

  const reload = async () => {
    try {
      const { body } = await api.service<{ value: CaCertificate[] }>('GET', '/certificates');
      setList(body.value);
    } catch (caught) {
      setError(caught);
    }
  };
  useEffect(() => void reload(), []);

  const upload = submit(async () => {
    await api.service('PUT', `/certificates/${encodeURIComponent(name.trim())}`, { body: { certificate: pem.trim() }, headers: { 'if-none-match': '*' } });
    setName('');
    setPem('');
    await reload();
  });

  const remove = (ca: CaCertificate) => {
    setDeleting(undefined);
    return run(async () => {
      await api.service('DELETE', `/certificates/${encodeURIComponent(ca.name)}`, { headers: ca.etag ? { 'if-match': ca.etag } : {} });
      await reload();
    });
  };

  return (
    <section class="certificates">
      <h1>CA certificates</h1>
      <p class="hint">A group can trust devices through a CA certificate of this instance once you prove you hold its private key (proof of possession).</p>
      <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
      {list === undefined ? <p class="loading">Loading…</p> : null}
      {list && list.length === 0 ? <p>No CA certificate yet.</p> : null}
      {list?.map((ca) => <CaCard key={ca.name} ca={ca} onChanged={reload} onDelete={() => setDeleting(ca)} />)}
      <form class="card" onSubmit={upload}>
        <h2>Upload a CA certificate</h2>
        <TextField label="Name" value={name} onInput={setName} required pattern="[A-Za-z0-9._\-]{1,64}" hint="Letters, digits, . _ - (at most 64)." />
        <CertificateInput label="CA certificate" pem={pem} onChange={setPem} />
        <button type="submit" disabled={busy || !pem.trim()}>
          Upload
        </button>
      </form>
      <ConfirmDialog open={deleting !== undefined} title={`Delete CA certificate ${deleting?.name ?? ''}?`} confirmLabel="Delete" danger onConfirm={() => deleting && void remove(deleting)} onCancel={() => setDeleting(undefined)}>
        <p>Groups that reference it must be changed first (the server refuses with error 409002 otherwise).</p>
      </ConfirmDialog>
    </section>
  );
}

function CaCard({ ca, onChanged, onDelete }: { ca: CaCertificate; onChanged: () => Promise<void>; onDelete: () => void }) {
  const api = useSession();
  const { busy, error, setError, run, submit } = useAction();
  const [code, setCode] = useState(ca.properties.verificationCode ?? '');
  const [proof, setProof] = useState('');
  const path = `/certificates/${encodeURIComponent(ca.name)}`;

  const generate = () =>
    run(async () => {
      const { body } = await api.service<CaCertificate>('POST', `${path}/generateVerificationCode`);
      setCode(body.properties.verificationCode ?? '');
    }, true);
  const verify = submit(async () => {
    await api.service<CaCertificate>('POST', `${path}/verify`, { body: { certificate: proof.trim() } });
    setProof('');
    setCode('');
    await onChanged();
  });

  const { properties } = ca;
  return (
    <article class="card ca" aria-label={`CA certificate ${ca.name}`}>
      <div class="page-head">
        <h2>{ca.name}</h2>
        <span class={properties.isVerified ? 'ok badge' : 'warn badge'}>{properties.isVerified ? 'Verified' : 'Unverified'}</span>
      </div>
      <dl class="cert-details">
        <dt>Subject</dt>
        <dd>{properties.subject}</dd>
        <dt>Thumbprint (SHA-1)</dt>
        <dd>
          <code>{properties.thumbprint}</code>
        </dd>
        <dt>Expires</dt>
        <dd>{properties.expiry}</dd>
      </dl>
      <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
      {!properties.isVerified ? (
        <ol class="pop-steps">
          <li>
            <button type="button" class="secondary" disabled={busy} onClick={() => void generate()}>
              {code ? 'Generate a new verification code' : 'Generate verification code'}
            </button>
            {code ? (
              <p>
                Verification code: <code class="code-value">{code}</code> <CopyButton value={code} label="Copy the verification code" />
              </p>
            ) : null}
          </li>
          <li>
            <form onSubmit={verify}>
              <p class="hint">Sign a certificate whose subject CN is the code with this CA's private key, and upload it.</p>
              <CertificateInput label="Verification certificate" pem={proof} onChange={setProof} />
              <button type="submit" disabled={busy || !code || !proof.trim()}>
                Verify
              </button>
            </form>
          </li>
        </ol>
      ) : null}
      <button type="button" class="danger" onClick={onDelete}>
        Delete
      </button>
    </article>
  );
}
