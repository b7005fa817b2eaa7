import type { ComponentChildren } from 'preact';
import { ConfirmDialog } from './confirm-dialog';

/*
 * What the admin list pages (instances, linked hubs) share besides useAction and ListTable: the
 * name rule and the confirmation before a removal.
 */

/** A 1-64 character name of letters, digits, - or _, as the admin API accepts for instances and hubs. */
export const NAME_PATTERN = '[A-Za-z0-9]([A-Za-z0-9_\\-]{0,62}[A-Za-z0-9])?';
export const NAME_TITLE = '1-64 letters, digits, - or _, starting and ending with a letter or digit';

/**
 * The confirmation before removing `item` (shown while it is set): "{verb} {name}?"; `onConfirm`
 * is called with the item after the dialog closes.
 */
export function ConfirmRemoval<T extends { name: string }>(props: { item: T | undefined; verb: string; onConfirm: (item: T) => void; onClose: () => void; children: ComponentChildren }) {
  const { item } = props;
  return (
    <ConfirmDialog
      open={item !== undefined}
      title={`${props.verb} ${item?.name ?? ''}?`}
      confirmLabel={props.verb}
      danger
      onConfirm={() => {
        props.onClose();
        if (item) props.onConfirm(item);
      }}
      onCancel={props.onClose}
    >
      {props.children}
    </ConfirmDialog>
  );
}
