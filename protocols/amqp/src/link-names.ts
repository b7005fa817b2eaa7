/**
 * rhea's session internals that `allowOneNameForBothRoles` adjusts (rhea `lib/session.js`).
 */
interface InternalLink {
  name: string;
  is_receiver(): boolean;
  on_attach(frame: AttachFrame): void;
  remove(): void;
  local: { handle: number };
  remote: { handle?: number; attach?: unknown };
}

interface AttachFrame {
  performative: { name: string; role: boolean; handle: number };
}

export interface SessionInternals {
  links: Record<string, InternalLink>;
  local: { handles: Record<number, InternalLink> };
  remote: { handles: Record<number, InternalLink> };
  on_attach(frame: AttachFrame): void;
  create_sender(name: string): InternalLink;
  create_receiver(name: string): InternalLink;
}

/**
 * AMQP 1.0 §2.6.1 identifies a link by its name and its role, and Qpid Proton names a client's
 * sender and receiver on the same address alike by default. rhea keys a session's links by name
 * alone and fails the second attach ("Attach already received"), closing the connection; here the
 * second role gets its own key, and its own removal.
 */
export function allowOneNameForBothRoles(session: SessionInternals): void {
  const original = session.on_attach.bind(session);
  session.on_attach = (frame) => {
    const { name, role, handle } = frame.performative;
    const existing = session.links[name];
    // role true: the peer receives, so our end is a sender
    const ourEndReceives = !role;
    if (!existing || existing.is_receiver() === ourEndReceives) return original(frame);
    const key = `${name}\u0000${ourEndReceives ? 'receiver' : 'sender'}`;
    if (session.links[key]) return original({ performative: { ...frame.performative, name: key } } as AttachFrame);
    const link = ourEndReceives ? session.create_receiver(name) : session.create_sender(name);
    session.links[name] = existing;
    session.links[key] = link;
    link.remove = () => {
      if (link.remote.handle !== undefined) delete session.remote.handles[link.remote.handle];
      delete session.local.handles[link.local.handle];
      delete session.links[key];
    };
    session.remote.handles[handle] = link;
    link.on_attach(frame);
    link.remote.attach = frame.performative;
  };
}
