// Swagger UI on the gateway's own OpenAPI document; "Authorize" holds the dashboard's token when signed in.
/* global SwaggerUIBundle, window, localStorage */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  onComplete: () => {
    const token = (() => {
      try {
        return localStorage.getItem("polity.token");
      } catch {
        return null; // storage refused: no token to hand over
      }
    })();
    if (token) window.ui.preauthorizeApiKey("bearer", token);
  },
});
