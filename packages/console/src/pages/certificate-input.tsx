import { useEffect, useId, useState } from 'preact/hooks';
import { certificateDetails, type CertificateDetails } from '../components/x509';
import type { CertificateInfo } from './enrollment-kind';

/** Subject, issuer, validity and thumbprints, from the browser's parse or the server's `info`. */
export function CertificateSummary({ details }: { details: { subject: string; issuer: string; notBefore: string; notAfter: string; thumbprint: string; serialNumber?: string } }) {
  return (
    <dl class="cert-details">
      <dt>Subject</dt>
      <dd>{details.subject}</dd>
      <dt>Issuer</dt>
      <dd>{details.issuer}</dd>
      <dt>Valid</dt>
      <dd>
        {details.notBefore} to {details.notAfter}
      </dd>
      <dt>Thumbprint (SHA-1)</dt>
      <dd>
        <code>{details.thumbprint}</code>
      </dd>
      {details.serialNumber ? (
        <>
          <dt>Serial number</dt>
          <dd>
            <code>{details.serialNumber}</code>
          </dd>
        </>
      ) : null}
    </dl>
  );
}

export const fromInfo = (info: CertificateInfo) => ({
  subject: info.subjectName,
  issuer: info.issuerName,
  notBefore: new Date(info.notBeforeUtc).toUTCString(),
  notAfter: new Date(info.notAfterUtc).toUTCString(),
  thumbprint: info.sha1Thumbprint,
  serialNumber: info.serialNumber,
});

export const fromDetails = (details: CertificateDetails) => ({
  subject: details.subject,
  issuer: details.issuer,
  notBefore: details.notBefore.toUTCString(),
  notAfter: details.notAfter.toUTCString(),
  thumbprint: details.sha1Thumbprint,
  serialNumber: details.serialNumber,
});

/**
 * A certificate chosen as a file or pasted as PEM, parsed in the page so the operator sees what it
 * is before saving. `pem` is the text as given; the parse (or its problem) is shown below it.
 */
export function CertificateInput(props: { label: string; pem: string; onChange: (pem: string) => void; stored?: CertificateInfo }) {
  const id = useId();
  const [details, setDetails] = useState<CertificateDetails>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    setDetails(undefined);
    setProblem(undefined);
    if (!props.pem.trim()) return;
    let live = true;
    certificateDetails(props.pem).then(
      (parsed) => live && setDetails(parsed),
      (error: Error) => live && setProblem(error.message),
    );
    return () => {
      live = false;
    };
  }, [props.pem]);
  return (
    <fieldset class="fieldset">
      <legend>{props.label}</legend>
      {props.stored && !props.pem ? (
        <>
          <p class="hint">Stored certificate:</p>
          <CertificateSummary details={fromInfo(props.stored)} />
        </>
      ) : null}
      <label for={`${id}-file`}>Certificate file (.pem, .cer)</label>
      <input
        id={`${id}-file`}
        type="file"
        accept=".pem,.cer,.crt"
        onChange={async (event) => {
          const file = (event.target as HTMLInputElement).files?.[0];
          if (!file) return;
          const bytes = new Uint8Array(await file.arrayBuffer());
          const text = new TextDecoder().decode(bytes);
          // A binary .cer is DER: send it as base64, which the server accepts (docs/service-rest.md §4).
          props.onChange(text.includes('-----BEGIN') ? text : btoa(String.fromCharCode(...bytes)));
        }}
      />
      <label for={`${id}-pem`}>Or paste PEM</label>
      <textarea
        id={`${id}-pem`}
        class="code"
        rows={4}
        spellcheck={false}
        value={props.pem}
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? `${id}-problem` : undefined}
        onInput={(event) => props.onChange((event.target as HTMLTextAreaElement).value)}
      />
      {problem ? (
        <p class="field-error" id={`${id}-problem`}>
          {problem}
        </p>
      ) : null}
      {details ? <CertificateSummary details={fromDetails(details)} /> : null}
    </fieldset>
  );
}
