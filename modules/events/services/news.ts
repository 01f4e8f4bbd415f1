import { randomUUID } from 'node:crypto'
import type { Static } from 'elysia'
import { notFound } from '../../../runtime/kernel/errors'
import type { NewsInput } from '../contract'
import type { EventsDb } from '../db'

type Input = Static<typeof NewsInput>

const view = (news: { id: string; title: string; body: string; pinned: boolean; createdAt: Date; updatedAt: Date }) => ({
  id: news.id,
  title: news.title,
  body: news.body,
  pinned: news.pinned,
  createdAt: news.createdAt.toISOString(),
  updatedAt: news.updatedAt.toISOString(),
})

/** Notices: pinned first, then newest. */
export function createNews(db: EventsDb) {
  return {
    async list(page: number, limit: number) {
      const [total, items] = await Promise.all([
        db.news.count(),
        db.news.findMany({ orderBy: [{ pinned: 'desc' }, { createdAt: 'desc' }, { id: 'asc' }], skip: (page - 1) * limit, take: limit }),
      ])
      return { items: items.map(view), page, limit, total }
    },

    async detail(id: string) {
      const news = await db.news.findUnique({ where: { id } })
      return news ? view(news) : undefined
    },

    async create(input: Input) {
      return view(await db.news.create({ data: { id: randomUUID(), title: input.title, body: input.body, pinned: input.pinned ?? false } }))
    },

    async update(id: string, input: Partial<Input>) {
      const { count } = await db.news.updateMany({ where: { id }, data: input })
      if (count === 0) throw notFound('news')
      return view(await db.news.findUniqueOrThrow({ where: { id } }))
    },

    async remove(id: string) {
      const { count } = await db.news.deleteMany({ where: { id } })
      if (count === 0) throw notFound('news')
    },
  }
}

export type News = ReturnType<typeof createNews>
