// Placeholder: says whether the page was served. The real frontend reads the API's URL from its
// own configuration and talks to it.
document.getElementById("status").textContent = "The static site is deployed.";
