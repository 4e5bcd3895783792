/** Shapes of credentials that must never appear in app settings, resource inputs or stack outputs. */
export const secretShapes = {
  pattern: /(AccountKey|SharedAccessKey|AccessKey)=|(^|[?&;])sig=/i,
  samples: [
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc==;EndpointSuffix=core.windows.net",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=abc=",
    "Endpoint=https://wps.webpubsub.azure.com;AccessKey=abc;Version=1.0;",
    "https://a.blob.core.windows.net/uploads/x?sv=2024-08-04&se=2030-01-01&sp=w&sig=abc%3D",
  ],
};

/** Every string anywhere inside `value` that looks like a credential, with its path. */
export function findSecrets(value: unknown, path = "$"): string[] {
  if (typeof value === "string") return secretShapes.pattern.test(value) ? [`${path}: ${value}`] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => findSecrets(v, `${path}[${i}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => findSecrets(v, `${path}.${k}`));
  return [];
}
