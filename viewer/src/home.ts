/** Home page: open a rover's viewer by id. */
const form = document.getElementById('open-rover') as HTMLFormElement | null;
form?.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = form.elements.namedItem('rover') as HTMLInputElement;
  location.assign(`/rovers/${encodeURIComponent(input.value.trim())}?autoconnect=1`);
});
