/** Live view: built in the next step (docs/console.md). */
export function LivePage() {
  return (
    <section>
      <h1>Live view</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
