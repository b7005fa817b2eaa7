import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import { ErrorBanner } from './error-banner';

export interface Page<T> {
  items: T[];
  /** The token of the next page (`x-ms-continuation`), absent on the last. */
  continuation?: string;
}

export interface Column<T> {
  title: string;
  cell: (row: T) => ComponentChildren;
}

/**
 * A table over a paged source (the service API's queries, docs/service-rest.md §5): search, next and
 * previous pages (previous pages are remembered by the tokens that led to them), an empty state in
 * words. `load` is called again when `reloadKey` changes.
 */
export function DataTable<T>(props: {
  caption: string;
  columns: Column<T>[];
  rowKey: (row: T) => string;
  load: (options: { continuation?: string; pageSize: number; search: string }) => Promise<Page<T>>;
  pageSize?: number;
  searchLabel?: string;
  empty?: string;
  reloadKey?: unknown;
}) {
  const pageSize = props.pageSize ?? 10;
  const searchId = useId();
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  /** tokens[i] is the continuation that loads page i (undefined for the first). */
  const [tokens, setTokens] = useState<(string | undefined)[]>([undefined]);
  const [index, setIndex] = useState(0);
  const [page, setPage] = useState<Page<T>>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const { load } = props;
  /** Only the latest request's answer is shown: an earlier search or page may answer after it. */
  const latest = useRef(0);

  const fetchPage = useCallback(
    async (at: number, continuation: string | undefined, query: string) => {
      const ticket = ++latest.current;
      setBusy(true);
      setError(undefined);
      try {
        const next = await load({ ...(continuation !== undefined ? { continuation } : {}), pageSize, search: query });
        if (ticket !== latest.current) return;
        setPage(next);
        setIndex(at);
        setTokens((known) => {
          const kept = known.slice(0, at + 1);
          if (next.continuation !== undefined) kept[at + 1] = next.continuation;
          return kept;
        });
      } catch (caught) {
        if (ticket === latest.current) setError(caught);
      } finally {
        if (ticket === latest.current) setBusy(false);
      }
    },
    [load, pageSize],
  );

  // A new source (another group's registrations), search or reload starts again at page 1.
  useEffect(() => {
    setTokens([undefined]);
    void fetchPage(0, undefined, applied);
  }, [fetchPage, applied, props.reloadKey]);

  return (
    <div class="data-table">
      <form
        class="toolbar"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          setTokens([undefined]);
          if (search === applied) void fetchPage(0, undefined, search);
          else setApplied(search);
        }}
      >
        <label for={searchId} class="inline">
          {props.searchLabel ?? 'Search'}
        </label>
        <input id={searchId} type="search" value={search} onInput={(event) => setSearch((event.target as HTMLInputElement).value)} />
        <button type="submit" class="secondary">
          Search
        </button>
      </form>
      <ErrorBanner error={error} />
      <div class="table-wrap" tabIndex={0} role="region" aria-label={props.caption}>
        <table aria-busy={busy}>
          <caption class="visually-hidden">{props.caption}</caption>
          <thead>
            <tr>
              {props.columns.map((column) => (
                <th key={column.title} scope="col">
                  {column.title}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {page?.items.map((row) => (
              <tr key={props.rowKey(row)}>
                {props.columns.map((column) => (
                  <td key={column.title} data-title={column.title}>
                    {column.cell(row)}
                  </td>
                ))}
              </tr>
            ))}
            {page && page.items.length === 0 ? (
              <tr>
                <td colSpan={props.columns.length} class="empty">
                  {applied ? `Nothing matches "${applied}".` : (props.empty ?? 'Nothing here yet.')}
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label={`${props.caption} pages`}>
        <button type="button" class="secondary" disabled={busy || index === 0} onClick={() => void fetchPage(index - 1, tokens[index - 1], applied)}>
          Previous page
        </button>
        <span role="status">{page ? `Page ${index + 1}` : busy ? 'Loading…' : ''}</span>
        <button type="button" class="secondary" disabled={busy || tokens[index + 1] === undefined} onClick={() => void fetchPage(index + 1, tokens[index + 1], applied)}>
          Next page
        </button>
      </nav>
    </div>
  );
}

/**
 * Pages through a query whose server side knows no filter: reads server pages until `pageSize`
 * items match `search` (case-insensitive substring of `text(item)`) or the results end.
 */
export async function searchPages<T>(
  query: (continuation: string | undefined, pageSize: number) => Promise<Page<T>>,
  options: { continuation?: string; pageSize: number; search: string },
  text: (item: T) => string,
): Promise<Page<T>> {
  const needle = options.search.trim().toLowerCase();
  if (!needle) return query(options.continuation, options.pageSize);
  const items: T[] = [];
  let continuation = options.continuation;
  do {
    const page = await query(continuation, 100);
    items.push(...page.items.filter((item) => text(item).toLowerCase().includes(needle)));
    continuation = page.continuation;
  } while (continuation !== undefined && items.length < options.pageSize);
  return { items, ...(continuation !== undefined ? { continuation } : {}) };
}
