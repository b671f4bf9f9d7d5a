// GraphiQL against this server: queries and mutations over HTTP POST
// /graphql, subscriptions over /graphql/ws (graphql-transport-ws), with the
// explorer plugin. A bearer token goes in the Headers tab:
//   { "Authorization": "Bearer <JWT>" }
// (headers are not persisted, so a token is not left in the browser).
(function () {
  'use strict';
  var here = window.location;
  var ws = (here.protocol === 'https:' ? 'wss://' : 'ws://') + here.host + '/graphql/ws';
  var fetcher = GraphiQL.createFetcher({
    url: here.origin + '/graphql',
    subscriptionUrl: ws,
  });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      shouldPersistHeaders: false,
      defaultQuery: '# execstore: try a query, e.g.\n{\n  rootExecutions(flowId: "checkout", first: 5) {\n    edges { node { levels totalNested execution { id status createdAt } } }\n  }\n}\n',
    })
  );
})();
