/** Hub devices: built in the next step (docs/console.md). */
export function HubDevicesPage() {
  return (
    <section>
      <h1>Hub devices</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
