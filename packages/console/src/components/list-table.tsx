import type { ComponentChildren } from 'preact';

/** A table that scrolls in its own frame at phone width, with a hidden caption and an unlabelled actions column. */
export function ListTable(props: { caption: ComponentChildren; columns: readonly string[]; children: ComponentChildren }) {
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((column) => (
              <th key={column} scope="col">
                {column}
              </th>
            ))}
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}
