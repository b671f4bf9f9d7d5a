// Types of every operation the client sends, generated from the server's
// schema.graphql (the SDL the server produces, checked by its test suite):
// an operation that stops matching the schema fails the build, and a
// changed field changes the types the client is compiled against.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['src/operations/*.graphql'],
  generates: {
    'src/generated/graphql.ts': {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
        enumsAsTypes: true,
        useTypeImports: true,
        avoidOptionals: { field: true, inputValue: false, object: true },
        skipTypename: true,
      },
    },
  },
  config: { noSilentErrors: true },
};

export default config;
