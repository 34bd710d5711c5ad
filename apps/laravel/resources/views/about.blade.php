<p>fabstack demo shop, release {{ $revision }}</p>
