/** Device fleet: built in the next step (docs/console.md). */
export function FleetPage() {
  return (
    <section>
      <h1>Device fleet</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
