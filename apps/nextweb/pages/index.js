// The booking front page, rendered on the server: rows and a cached value from the Express API on this host.
import os from 'os';

export async function getServerSideProps() {
  const api = process.env.API_URL || 'http://127.0.0.1:8002/';
  try {
    const response = await fetch(api, { headers: { 'X-Forwarded-For': '127.0.0.1' } });
    const data = await response.json();
    return { props: { host: os.hostname(), rows: data.rows || [], cached: data.redis || '', error: '' } };
  } catch (err) {
    return { props: { host: os.hostname(), rows: [], cached: '', error: String(err.message) } };
  }
}

export default function Home({ host, rows, cached, error }) {
  return (
    <main>
      <h1>fabstack booking</h1>
      <p id="served-by">served by {host}</p>
      {error ? <p id="error">{error}</p> : null}
      <ul>{rows.map((row) => <li key={row.id}>{row.name}</li>)}</ul>
      <p id="cached">{cached}</p>
    </main>
  );
}
