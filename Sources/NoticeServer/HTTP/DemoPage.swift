/// The demo page: plain HTML and a few lines of STOMP over WebSocket, no libraries. It shows
/// the pop-up of each live notice (the legacy remind destination) and the inbox: a badge from
/// the events destination's counts, the list from the HTTP API, mark read (one, or all), and
/// every change made in another tab as it happens (docs/inbox.md).
///
/// For scripted checks: `?token=<dev token>` connects at once, `?report=<url>` sends each
/// badge value to `<url>?m=<tab>:badge:<n>` (`?tab=`, default `tab`), `?then=read-all` marks
/// all read once the inbox loaded.
enum DemoPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>notice-service demo</title>
        <style>
          body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; color: #222; }
          h1 { font-size: 1.4rem; }
          fieldset { border: 1px solid #ccc; border-radius: 6px; margin-bottom: 1rem; }
          input, select, button { font: inherit; margin: .2rem; }
          #status { font-weight: 600; }
          #status.on { color: #0a7d32; }
          #notices { list-style: none; padding: 0; }
          #notices li { border: 1px solid #ddd; border-left: 4px solid #2a6ad3; border-radius: 4px; padding: .5rem .8rem; margin: .4rem 0; }
          #notices li .meta { color: #777; font-size: .8rem; }
          #toast { position: fixed; right: 1rem; top: 1rem; background: #2a6ad3; color: #fff; padding: .8rem 1rem; border-radius: 6px; display: none; }
          h2 .badge { display: inline-block; min-width: 1.4em; padding: 0 .4em; border-radius: 1em; background: #d32a2a; color: #fff; font-size: .9rem; text-align: center; vertical-align: middle; }
          h2 .badge.zero { background: #aaa; }
          h2 button { font-size: .85rem; margin-left: .6rem; vertical-align: middle; }
          #inbox { list-style: none; padding: 0; }
          #inbox li { display: flex; justify-content: space-between; align-items: center; border-bottom: 1px solid #eee; padding: .35rem .2rem; }
          #inbox li.unread strong::before { content: "● "; color: #2a6ad3; }
          #inbox li.read { color: #888; }
        </style>
        </head>
        <body>
        <h1>notice-service demo</h1>
        <fieldset>
          <legend>1. Connect as a dev user</legend>
          <select id="user"></select>
          <button id="connect">Connect</button>
          <span id="status">disconnected</span>
        </fieldset>
        <fieldset>
          <legend>2. Publish a notice to RabbitMQ</legend>
          <form id="publish">
            to <select id="to"></select>
            <input id="title" value="Meeting at 3 pm" size="18">
            <input id="content" value="Room 4, bring the slides." size="24">
            <button>Publish</button>
          </form>
        </fieldset>
        <h2>Inbox <span id="badge" class="badge zero" title="unread">0</span>
          <button id="readAll" disabled>Mark all read</button></h2>
        <ul id="inbox"></ul>
        <h2>Live reminders</h2>
        <ul id="notices"></ul>
        <div id="toast"></div>
        <script>
        const $ = id => document.getElementById(id);
        // liveCounts: the events destination has sent counts, which then win over any fetched.
        let ws = null, users = [], token = null, inboxLoaded = false, liveCounts = false;
        const params = new URLSearchParams(location.search);
        const api = (method, path, body) => fetch(path, {
          method, headers: Object.assign({ Authorization: 'Bearer ' + token }, body ? { 'Content-Type': 'application/json' } : {}),
          body: body ? JSON.stringify(body) : undefined
        });
        fetch('/demo/users').then(r => r.json()).then(list => {
          users = list;
          for (const u of list) {
            $('user').add(new Option('user ' + u.userId, u.token));
            $('to').add(new Option('user ' + u.userId, u.userId));
          }
          $('to').add(new Option('everyone (broadcast)', '*'));
          // /?token=<dev token> connects straight away (handy for scripted checks).
          const given = params.get('token');
          if (given && list.some(u => u.token === given)) { $('user').value = given; $('connect').onclick(); }
        });
        function frame(command, headers, body) {
          let text = command + '\n';
          for (const [k, v] of Object.entries(headers)) text += k + ':' + v + '\n';
          return text + '\n' + (body || '') + '\0';
        }
        function parse(text) {
          const end = text.indexOf('\n\n');
          const lines = text.slice(0, end).split('\n');
          const headers = {};
          for (const line of lines.slice(1)) { const i = line.indexOf(':'); headers[line.slice(0, i)] = line.slice(i + 1); }
          return { command: lines[0], headers, body: text.slice(end + 2) };
        }
        function setStatus(text, on) { $('status').textContent = text; $('status').className = on ? 'on' : ''; }
        $('connect').onclick = () => {
          if (ws) ws.close();
          token = $('user').value;
          const userId = users.find(u => u.token === token).userId;
          ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws', ['v12.stomp', 'v11.stomp']);
          let buffer = '';
          ws.onopen = () => ws.send(frame('CONNECT', { 'accept-version': '1.2,1.1', 'heart-beat': '10000,10000', Authorization: 'Bearer ' + token }));
          ws.onmessage = event => {
            buffer += event.data;
            let nul;
            while ((nul = buffer.indexOf('\0')) >= 0) {
              const text = buffer.slice(0, nul).replace(/^\n+/, '');
              buffer = buffer.slice(nul + 1);
              if (!text) continue;
              const f = parse(text);
              if (f.command === 'CONNECTED') {
                setStatus('connected as user ' + f.headers['user-name'], true);
                ws.send(frame('SUBSCRIBE', { id: 'sub-0', destination: '/notice/' + userId + '/remind' }));
                // Counts now, then every change the user makes in any tab, then counts again.
                ws.send(frame('SUBSCRIBE', { id: 'events', destination: '/user/notice/events' }));
                loadInbox();
              } else if (f.command === 'MESSAGE' && f.headers.subscription === 'events') {
                const event = JSON.parse(f.body);
                if (event.type === 'counts') { liveCounts = true; setBadge(event); } else loadInbox();
              } else if (f.command === 'MESSAGE') {
                show(JSON.parse(f.body));
                loadInbox();
              } else if (f.command === 'ERROR') {
                setStatus('error: ' + f.headers.message, false);
              }
            }
          };
          ws.onclose = () => setStatus('disconnected', false);
          setInterval(() => ws && ws.readyState === 1 && ws.send('\n'), 10000);
        };
        function setBadge(counts) {
          const text = counts.unreadCapped ? counts.cap + '+' : String(counts.unread);
          $('badge').textContent = text;
          $('badge').className = 'badge' + (counts.unread ? '' : ' zero');
          const report = params.get('report');
          if (report) fetch(report + '?m=' + encodeURIComponent((params.get('tab') || 'tab') + ':badge:' + text), { mode: 'no-cors' });
        }
        function loadInbox() {
          if (!liveCounts) api('GET', '/api/notices/count').then(r => r.json()).then(counts => { if (!liveCounts) setBadge(counts); });
          api('GET', '/api/notices?limit=20').then(r => r.json()).then(page => {
            $('inbox').replaceChildren(...page.notices.map(item => {
              const li = document.createElement('li');
              li.className = item.readAt ? 'read' : 'unread';
              li.innerHTML = '<span><strong></strong> <span class="meta"></span></span>';
              li.querySelector('strong').textContent = item.notice.title || '(no title)';
              li.querySelector('.meta').textContent = 'id ' + item.id + (item.notice.broadcast ? ' · announcement' : '');
              if (!item.readAt) {
                const button = document.createElement('button');
                button.textContent = 'Mark read';
                button.onclick = () => api('POST', '/api/notices/' + item.id + '/read');
                li.append(button);
              }
              return li;
            }));
            $('readAll').disabled = !page.notices.some(item => !item.readAt);
            if (!inboxLoaded && params.get('then') === 'read-all') $('readAll').onclick();
            inboxLoaded = true;
          });
        }
        $('readAll').onclick = () => api('POST', '/api/notices/state', { action: 'read', all: true });
        function show(n) {
          const li = document.createElement('li');
          li.innerHTML = '<strong></strong><div></div><div class="meta"></div>';
          li.children[0].textContent = n.title || '(no title)';
          li.children[1].textContent = n.content || '';
          li.children[2].textContent = 'id ' + n.id + ' · ' + n.createdAt + (n.broadcast ? ' · broadcast' : '');
          $('notices').prepend(li);
          $('toast').textContent = '🔔 ' + (n.title || 'New notice');
          $('toast').style.display = 'block';
          setTimeout(() => $('toast').style.display = 'none', 3000);
        }
        $('publish').onsubmit = event => {
          event.preventDefault();
          const to = $('to').value;
          const notice = { title: $('title').value, content: $('content').value, sendTarget: 'SYS' };
          if (to === '*') notice.broadcast = true; else notice.userId = to;
          fetch('/demo/publish', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(notice) })
            .then(r => r.ok ? null : r.json().then(e => alert(e.message)));
        };
        </script>
        </body>
        </html>
        """#
}
