/** Linked hubs: built in the next step (docs/console.md). */
export function HubsPage() {
  return (
    <section>
      <h1>Linked hubs</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
