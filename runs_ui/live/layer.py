"""The Redis channel layer on a blocking connection pool with explicit timeouts.

channels_redis's own pool raises MaxConnectionsError when every connection is busy (a storm of sockets
joining or leaving at once then crashes consumers with code 1011); a blocking pool makes them wait, up to
its `timeout`, for a free connection instead.
"""

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class BlockingPoolRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
