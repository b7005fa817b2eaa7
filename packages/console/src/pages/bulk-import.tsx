import { useId, useState } from 'preact/hooks';
import { errorText } from '../api';
import { SelectField } from '../components/fields';
import { parseCsv } from '../components/csv';
import { useSession } from '../session';
import type { EnrollmentKind } from './enrollment-kind';

/** The service API takes at most 10 items per bulk operation (docs/service-rest.md §3, 400008). */
const BULK_LIMIT = 10;

type Mode = 'create' | 'update' | 'delete';

interface RowResult {
  row: number;
  id: string;
  ok: boolean;
  text: string;
}

/**
 * A CSV row as an enrollment. Columns (any order, unknown ones ignored): the id column
 * (`registrationId` or `enrollmentGroupId`), `attestation` (symmetricKey, the default; tpm),
 * `primaryKey`, `secondaryKey`, `endorsementKey`, `deviceId`, `provisioningStatus`,
 * `allocationPolicy`, `iotHubs` (separated by spaces or `;`).
 */
function fromCsvRow(kind: EnrollmentKind, row: Record<string, string>): Record<string, unknown> {
  const type = row.attestation || 'symmetricKey';
  const attestation =
    type === 'tpm'
      ? { type, tpm: { endorsementKey: row.endorsementKey ?? '' } }
      : { type, symmetricKey: { ...(row.primaryKey ? { primaryKey: row.primaryKey } : {}), ...(row.secondaryKey ? { secondaryKey: row.secondaryKey } : {}) } };
  const hubs = (row.iotHubs ?? '').split(/[\s;]+/).filter(Boolean);
  return {
    [kind.idField]: row[kind.idField] ?? '',
    attestation,
    ...(row.deviceId && kind.kind === 'individual' ? { deviceId: row.deviceId } : {}),
    ...(row.provisioningStatus ? { provisioningStatus: row.provisioningStatus } : {}),
    ...(row.allocationPolicy ? { allocationPolicy: row.allocationPolicy } : {}),
    ...(hubs.length ? { iotHubs: hubs } : {}),
  };
}

/** JSON (an array of enrollments, or `{enrollments: […]}`) or CSV with a header row. */
export function parseImport(kind: EnrollmentKind, text: string): Record<string, unknown>[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    const parsed: unknown = JSON.parse(trimmed);
    const items = Array.isArray(parsed) ? parsed : (parsed as Record<string, unknown>)[kind.bulkField];
    if (!Array.isArray(items)) throw new Error(`JSON must be an array of ${kind.noun}s or {"${kind.bulkField}": […]}.`);
    return items as Record<string, unknown>[];
  }
  return parseCsv(trimmed).map((row) => fromCsvRow(kind, row));
}

/** Bulk import (POST {collection} with {mode, items}, 10 at a time) with one result per row. */
export function BulkImport({ kind, onDone }: { kind: EnrollmentKind; onDone: () => void }) {
  const api = useSession();
  const id = useId();
  const [text, setText] = useState('');
  const [mode, setMode] = useState<Mode>('create');
  const [results, setResults] = useState<RowResult[]>();
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);

  const run = async () => {
    setProblem(undefined);
    setResults(undefined);
    let items: Record<string, unknown>[];
    try {
      items = parseImport(kind, text);
    } catch (error) {
      setProblem(`The import cannot be read: ${(error as Error).message}`);
      return;
    }
    if (items.length === 0) {
      setProblem('The import has no rows.');
      return;
    }
    setBusy(true);
    const out: RowResult[] = [];
    for (let start = 0; start < items.length; start += BULK_LIMIT) {
      const chunk = items.slice(start, start + BULK_LIMIT);
      try {
        const { body } = await api.service<{ isSuccessful: boolean; errors: Record<string, unknown>[] }>('POST', kind.apiPath, { body: { mode, [kind.bulkField]: chunk } });
        // The server reports failures in the order of the items, each with its id: walk both in step,
        // so rows that repeat an id still get their own result.
        const failures = [...body.errors];
        chunk.forEach((item, offset) => {
          const itemId = String(item[kind.idField] ?? '');
          const failure = failures[0] !== undefined && String(failures[0][kind.idField] ?? '') === itemId ? failures.shift() : undefined;
          out.push({
            row: start + offset + 1,
            id: itemId,
            ok: !failure,
            text: failure ? `${String(failure.errorStatus)} (error ${String(failure.errorCode)})` : mode === 'delete' ? 'Deleted' : mode === 'create' ? 'Created' : 'Updated',
          });
        });
      } catch (error) {
        chunk.forEach((item, offset) => out.push({ row: start + offset + 1, id: String(item[kind.idField] ?? ''), ok: false, text: errorText(error) }));
      }
    }
    setBusy(false);
    setResults(out);
    onDone();
  };

  const readFile = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    if (file) setText(await file.text());
  };

  return (
    <details class="card bulk">
      <summary>Bulk import from CSV or JSON</summary>
      <p class="hint">
        CSV: a header row naming <code>{kind.idField}</code> and any of <code>attestation</code> (symmetricKey or tpm), <code>primaryKey</code>, <code>secondaryKey</code>,{' '}
        <code>endorsementKey</code>, {kind.kind === 'individual' ? <code>deviceId</code> : null} <code>provisioningStatus</code>, <code>allocationPolicy</code>, <code>iotHubs</code>.
        JSON: an array of {kind.noun}s as the service API takes them. Missing keys are generated.
      </p>
      <label for={`${id}-file`}>File</label>
      <input id={`${id}-file`} type="file" accept=".csv,.json,text/csv,application/json" onChange={(event) => void readFile(event.target as HTMLInputElement)} />
      <label for={`${id}-text`}>Or paste CSV or JSON</label>
      <textarea id={`${id}-text`} class="code" rows={6} spellcheck={false} value={text} onInput={(event) => setText((event.target as HTMLTextAreaElement).value)} />
      <SelectField<Mode>
        label="Mode"
        value={mode}
        onChange={setMode}
        options={[
          { value: 'create', label: 'Create (fails for existing ids)' },
          { value: 'update', label: 'Create or update' },
          { value: 'delete', label: 'Delete' },
        ]}
      />
      <div class="toolbar">
        <button type="button" disabled={busy || !text.trim()} onClick={() => void run()}>
          {busy ? 'Importing…' : 'Import'}
        </button>
      </div>
      {problem ? (
        <p class="field-error" role="alert">
          {problem}
        </p>
      ) : null}
      {results ? (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Import results">
          <table>
            <caption>
              Import results: {results.filter((result) => result.ok).length} of {results.length} rows succeeded
            </caption>
            <thead>
              <tr>
                <th scope="col">Row</th>
                <th scope="col">{kind.idLabel}</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {results.map((result) => (
                <tr key={result.row} class={result.ok ? 'ok' : 'bad'}>
                  <td>{result.row}</td>
                  <td>{result.id || '(none)'}</td>
                  <td>{result.text}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </details>
  );
}
