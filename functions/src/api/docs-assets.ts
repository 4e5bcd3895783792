/**
 * The swagger-ui-dist files the docs page serves, with their content types. Its own module so the
 * service registry can name them (the bundler copies them beside the api's code) without loading
 * the docs handler.
 */
export const swaggerUiAssets = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
} as const satisfies Record<string, string>;

export const SWAGGER_UI_ASSET_FILES = Object.keys(swaggerUiAssets) as (keyof typeof swaggerUiAssets)[];
